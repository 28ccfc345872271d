"""The step factory: one mechanism that turns any task's losses into pure, jitted train/eval steps.

A task supplies one loss per trained network,

  loss_fn(params, state, batch, rng, train) -> (loss, (metrics, mutable_updates))

where `params` are the trained network's parameters, `state` the whole train state (read-only:
the current variables of every network), `metrics` a dict of scalars and `mutable_updates` the
new Flax mutable collections (or None); `rng` is a fresh key per step and per network.

- One network: the state is a `TrainState` and `make_train_step(loss_fn)`; `mutable_updates` are
  that network's collections.
- Several networks (a GAN's generator and discriminator, a Q-network and its target): the state is
  a `flax.struct` dataclass whose fields hold `TrainState`s, each with its own optimizer, and
  `make_train_step([Update("disc", d_loss), Update("gen", g_loss)])` runs the updates in order in
  one step, each seeing what the previous one left. `mutable_updates` is then
  `{network_field: collections}` for every network whose collections the loss changed (a
  discriminator run in training mode during the generator's update updates its BatchNorm
  statistics too); the factory checks each is complete, so none is silently dropped. Metrics are
  prefixed with the network's field name (`disc_loss`, `gen_grad_norm`).

A `Polyak(network, source, decay)` entry may follow the `Update`s: it moves the parameters held in
field `network` (a pytree of parameters, never trained by a gradient) towards those of the
`TrainState` in field `source`, `network <- decay * network + (1 - decay) * source.params`, in the
same jitted step: the exponential moving average that diffusion models sample with.

Optionally `batch_fn(feed, step) -> batch` turns what the host passes in (`feed`: e.g. a
device-resident dataset plus this epoch's permutation) into the batch *inside* jit, so small
datasets are shuffled, batched and augmented without a host round trip per step.

The factory returns a `TrainStep`: the step function together with the settings it was built
with (`steps_per_call`, `state_sharding`), which `Experiment` reads from it, so the step and the
loop cannot disagree about them. The same pure step (`jit=False`) is what RL agents call inside
their own `lax.scan`, so every family shares the gradient and optimizer code.
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import optax

from dljax.train_state import TrainState

LossFn = Callable[..., tuple[jax.Array, tuple[dict, Any]]]


@dataclasses.dataclass(frozen=True)
class TrainStep:
  """A train step `(state, feed) -> (state, metrics)` and the settings the loop must agree with.

  fn: the step; jitted with `state` donated, or a plain function (`jit=False`, or a host-driven
    step, which `Experiment.host_driven` declares).
  steps_per_call: how many steps one call runs (its metrics then have that leading axis).
  state_sharding: where the state lives, a `jax.sharding.Sharding` or a pytree of them matching
    the state (the loop initialises and restores it there); None: replicated over the mesh.
  """

  fn: Callable
  steps_per_call: int = 1
  state_sharding: Any = None

  def __call__(self, state, feed):
    return self.fn(state, feed)


@dataclasses.dataclass(frozen=True)
class Update:
  """One gradient update inside a train step: `loss_fn` trains the `TrainState` in field
  `network` of the step's state."""

  network: str
  loss_fn: LossFn


@dataclasses.dataclass(frozen=True)
class Polyak:
  """An exponential moving average inside a train step: field `network` (parameters only) moves
  towards the parameters of the `TrainState` in field `source` with `decay` per step."""

  network: str
  source: str
  decay: float


def _polyak_update(state, polyak: Polyak):
  average = optax.incremental_update(
    getattr(state, polyak.source).params, getattr(state, polyak.network), 1.0 - polyak.decay
  )
  return state.replace(**{polyak.network: average})


def _with_mutable(net: TrainState, name: str, collections) -> TrainState:
  if jax.tree.structure(collections) != jax.tree.structure(net.mutable):
    raise ValueError(
      f"a loss returned mutable collections for {name!r} that do not match its state: got "
      f"{jax.tree.structure(collections)}, expected {jax.tree.structure(net.mutable)}"
    )
  return net.replace(mutable=dict(collections))


def _gradients(loss_fn: LossFn, net: TrainState, state, batch):
  """`loss_fn`'s gradient for `net`'s params, given the whole `state`: (net with the gradient
  applied, the loss's mutable updates, metrics with `loss` and `grad_norm`)."""
  rng = net.step_rng()
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  (loss, (metrics, mutable)), grads = grad_fn(net.params, state, batch, rng, True)
  metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), **metrics}
  return net.apply_gradients(grads), mutable, metrics


def _gradient_update(state, update: Update, batch):
  """`update` applied to `state`: (new state, metrics prefixed by the network's name)."""
  net, mutable, metrics = _gradients(update.loss_fn, getattr(state, update.network), state, batch)
  state = state.replace(**{update.network: net})
  for name, collections in (mutable or {}).items():
    state = state.replace(**{name: _with_mutable(getattr(state, name), name, collections)})
  return state, {f"{update.network}_{k}": v for k, v in metrics.items()}


def _single_update(loss_fn: LossFn, state: TrainState, batch):
  """The one-network case: the state is the `TrainState` itself and metrics keep their names."""
  state, mutable, metrics = _gradients(loss_fn, state, state, batch)
  if mutable is not None:
    state = _with_mutable(state, "the model", mutable)
  return state, metrics


def make_train_step(
  losses: LossFn | Sequence[Update | Polyak],
  batch_fn: Callable | None = None,
  *,
  steps_per_call: int = 1,
  jit: bool = True,
  state_sharding=None,
):
  """Returns the `TrainStep` `(state, feed) -> (state, metrics)`; with `jit`, `state` is donated.

  `losses` is one loss function (the state is a `TrainState`) or a sequence of `Update`s (the
  state holds one `TrainState` per updated network), the first one an `Update`, each `Polyak`
  applied where it stands in the sequence. With `steps_per_call > 1` one call runs that
  many steps in a `lax.scan` and returns metrics stacked along a leading axis: for small steps on
  XLA:CPU this saves the per-call dispatch overhead (nanoGPT's CPU shape: 35 ms/step instead of
  48 ms).

  `state_sharding` (where the loop places the state; None: replicated, no constraint) pins every
  step's new state to where the state lives: XLA's sharding propagation may otherwise return a
  sharded state in another layout than the next call expects, and the pin makes each device apply
  the optimizer update to its own shard only.
  """
  updates = None if callable(losses) else tuple(losses)
  if updates is not None and not (updates and isinstance(updates[0], Update)):
    raise ValueError("make_train_step's sequence must start with an Update (it counts the steps)")

  def updated(state, feed):
    if updates is None:
      batch = batch_fn(feed, state.step) if batch_fn is not None else feed
      return _single_update(losses, state, batch)
    step = getattr(state, updates[0].network).step
    batch = batch_fn(feed, step) if batch_fn is not None else feed
    metrics = {}
    for update in updates:
      if isinstance(update, Polyak):
        state = _polyak_update(state, update)
        continue
      state, update_metrics = _gradient_update(state, update, batch)
      metrics.update(update_metrics)
    return state, metrics

  def train_step(state, feed):
    state, metrics = updated(state, feed)
    if state_sharding is not None:
      state = jax.lax.with_sharding_constraint(state, state_sharding)
    return state, metrics

  def train_steps(state, feed):
    return jax.lax.scan(lambda s, _: train_step(s, feed), state, length=steps_per_call)

  step_fn = train_step if steps_per_call == 1 else train_steps
  return TrainStep(
    jax.jit(step_fn, donate_argnums=0) if jit else step_fn, steps_per_call, state_sharding
  )


def make_eval_step(loss_fn: LossFn, *, jit: bool = True):
  """Returns `eval_step(state, batch, rng) -> metrics`: the loss and metrics in inference mode.

  `rng` reaches the loss (with `train=False`) for models that sample in evaluation (a VAE).
  """

  def eval_step(state: TrainState, batch, rng):
    loss, (metrics, _) = loss_fn(state.params, state, batch, rng, False)
    return {"loss": loss, **metrics}

  return jax.jit(eval_step) if jit else eval_step
