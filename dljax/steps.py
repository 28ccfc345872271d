"""The step factory: one mechanism that turns any task's loss into pure, jitted train/eval steps.

A task supplies

  loss_fn(params, state, batch, rng, train) -> (loss, (metrics, mutable_updates))

where `metrics` is a dict of scalars, `mutable_updates` the new Flax mutable collections (or
None), and `rng` is None when `train` is False. Optionally `batch_fn(feed, step) -> batch` turns
what the host passes in (`feed`: e.g. a device-resident dataset plus this epoch's permutation)
into the batch *inside* jit, so small datasets are shuffled, batched and augmented without a host
round trip per step.

The same pure step (`jit=False`) is what RL agents call inside their own `lax.scan`, so vision,
language models and RL updates share the gradient and optimizer code.
"""

from typing import Any, Callable

import jax
import optax

from dljax.train_state import TrainState

LossFn = Callable[..., tuple[jax.Array, tuple[dict, Any]]]


def make_train_step(loss_fn: LossFn, batch_fn: Callable | None = None, *, steps_per_call: int = 1,
                    jit: bool = True):
  """Returns `train_step(state, feed) -> (state, metrics)`; with `jit`, `state` is donated.

  With `steps_per_call > 1` one call runs that many steps in a `lax.scan` and returns metrics
  stacked along a leading axis: for small steps on XLA:CPU this saves the per-call dispatch
  overhead (nanoGPT's CPU shape: 35 ms/step instead of 48 ms).
  """

  def train_step(state: TrainState, feed):
    batch = batch_fn(feed, state.step) if batch_fn is not None else feed
    rng = jax.random.fold_in(state.rng, state.step)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, (metrics, mutable)), grads = grad_fn(state.params, state, batch, rng, True)
    state = state.apply_gradients(grads, mutable)
    return state, {"loss": loss, "grad_norm": optax.tree.norm(grads), **metrics}

  def train_steps(state: TrainState, feed):
    return jax.lax.scan(lambda s, _: train_step(s, feed), state, length=steps_per_call)

  step_fn = train_step if steps_per_call == 1 else train_steps
  return jax.jit(step_fn, donate_argnums=0) if jit else step_fn


def make_eval_step(loss_fn: LossFn, *, jit: bool = True):
  """Returns `eval_step(state, batch) -> metrics`: the loss and metrics in inference mode."""

  def eval_step(state: TrainState, batch):
    loss, (metrics, _) = loss_fn(state.params, state, batch, None, False)
    return {"loss": loss, **metrics}

  return jax.jit(eval_step) if jit else eval_step
