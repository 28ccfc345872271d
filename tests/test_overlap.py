"""The loop's CPU overlap (dljax.overlap): the same state and step as without it, under the mesh."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from dljax import overlap, parallel
from dljax.steps import TrainStep


def test_work_on_a_thread_runs_under_the_callers_mesh():
  mesh = parallel.make_data_mesh(2)
  future = overlap.start_on_thread(mesh, jax.sharding.get_abstract_mesh)
  assert future.result() == mesh.abstract_mesh


def test_compile_and_init_gives_the_fresh_state_and_a_step_compiled_for_it():
  mesh = parallel.make_data_mesh(2)
  split = NamedSharding(mesh, P("data"))
  init = jax.jit(lambda: jnp.arange(4.0), out_shardings=split)
  step = TrainStep(jax.jit(lambda state, feed: (state * 2, {"sum": state.sum()})))
  abstract = jax.eval_shape(init)
  state, compiled, seconds = overlap.compile_and_init(mesh, step, False, init, abstract, None, None)
  assert state.sharding == split and seconds > 0
  assert isinstance(compiled, jax.stages.Compiled)
  state, metrics = compiled(state, None)
  np.testing.assert_array_equal(state, [0.0, 2.0, 4.0, 6.0])
  assert float(metrics["sum"]) == 6.0
  # A restored state is kept; a host-driven step comes back as it is, uncompiled.
  kept, same, _ = overlap.compile_and_init(mesh, step, True, init, abstract, None, state)
  assert kept is state and same is step


def test_the_warm_up_hands_back_a_finiteness_check_and_raises_the_tasks_failure():
  mesh = parallel.make_data_mesh(2)
  abstract = jax.eval_shape(lambda: {"w": jnp.zeros(4), "step": jnp.int32(0)})
  seen = []
  warm_up = overlap.WarmUp(mesh, abstract, False, seen.append)
  check = warm_up.finish()
  assert seen == [abstract] and warm_up.finish() is check
  assert bool(check({"w": jnp.zeros(4), "step": jnp.int32(3)}))
  assert not bool(check({"w": jnp.array([0.0, jnp.inf, 0.0, 0.0]), "step": jnp.int32(3)}))

  def failing(abstract_state):
    raise RuntimeError("the warm-up failed")

  with pytest.raises(RuntimeError, match="the warm-up failed"):
    overlap.WarmUp(mesh, abstract, True, failing).finish()
