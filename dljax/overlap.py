"""The loop's CPU overlap: work the start and the end of a run would wait for, done on idle cores.

XLA compiles and computes without holding the GIL, so a thread of its own keeps a core busy while
the loop's thread does something else:

- `compile_and_init`: a fresh state is initialised on a thread while the train step compiles
  ahead of time from the state's shapes (a host-driven step is not compiled ahead: it compiles
  what it runs on its first call);
- `WarmUp`: what the end of a run does for the first time (importing matplotlib for the PNGs,
  compiling the state's finiteness check, the task's `Hooks.warm_up`) runs while the first train
  steps run; `finish` hands back the finiteness check for the state's sharding.

None of this changes a result: the state and the step are the ones the loop would otherwise build
on its own thread.
"""

import concurrent.futures
import time

import jax
import jax.numpy as jnp

from dljax import metrics_log


def start_on_thread(mesh, f) -> concurrent.futures.Future:
  """Starts `f()` under `mesh` on a thread of its own (a thread does not inherit its starter's
  `jax.set_mesh`)."""

  def in_mesh():
    with jax.set_mesh(mesh):
      return f()

  pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
  future = pool.submit(in_mesh)
  pool.shutdown(wait=False)  # the thread ends when `f` returns
  return future


@jax.jit
def all_finite(tree) -> jax.Array:
  """Whether every float in `tree` is finite (a state about to be checkpointed)."""
  leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in leaves]))


def compile_and_init(mesh, train_step, host_driven: bool, init_state, abstract_state, feed, state):
  """`(state, step, compile seconds)`: `state` as given, or when it is None a fresh one from the
  jitted `init_state`, computed on a thread while the step compiles; `step` compiled ahead of time
  for `abstract_state` and `feed` (the `TrainStep`'s function), or `train_step` itself when it is
  `host_driven`."""
  if not host_driven and not hasattr(train_step.fn, "lower"):
    raise TypeError(
      "the train step is a plain function, which cannot be compiled ahead of time; if it drives "
      "the host between jitted calls, declare it with Experiment.host_driven=True, else jit it"
    )
  initialized = None if state is not None else start_on_thread(mesh, init_state)
  t0 = time.perf_counter()
  step = train_step if host_driven else train_step.fn.lower(abstract_state, feed).compile()
  compile_time = time.perf_counter() - t0
  if initialized is not None:
    state = initialized.result()
  return state, step, compile_time


class WarmUp:
  """Pays, on a thread of its own, what the end of a run does for the first time."""

  def __init__(self, mesh, abstract_state, host_driven: bool, task_warm_up=None):
    def warm_up():
      metrics_log.import_pyplot()
      check = all_finite
      if not host_driven:  # the state keeps the sharding the step was compiled for
        check = all_finite.lower(abstract_state).compile()
      if task_warm_up is not None:
        task_warm_up(abstract_state)
      return check

    self._future = start_on_thread(mesh, warm_up)
    self._check = None

  def finish(self):
    """Waits for the warm-up (raising what it raised) and returns the finiteness check
    `state -> bool array`; later calls return it at once."""
    if self._check is None:
      self._check = self._future.result()
    return self._check
