"""The train state every dljax experiment carries: a pytree that jit can donate and orbax can save."""

from collections.abc import Callable
from typing import Any

import flax
import jax
import optax


@flax.struct.dataclass
class TrainState:
  """One network's parameters, optimizer state, step, RNG key and mutable model collections.

  A state with several networks (dljax.steps.Update) holds one `TrainState` per network.

  `mutable` holds Flax collections that the forward pass updates (BatchNorm's `batch_stats`);
  it is an empty dict for models without any. `rng` is a raw uint32 key: each step derives its
  own key from it (`step_rng`), so a resumed run draws the same randomness as an uninterrupted
  one. `apply_fn` and `tx` are static: they are code, not data, and are neither
  traced nor checkpointed.
  """

  step: jax.Array
  params: Any
  opt_state: optax.OptState
  rng: jax.Array
  mutable: dict
  apply_fn: Callable = flax.struct.field(pytree_node=False)
  tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)

  @classmethod
  def create(cls, *, apply_fn, params, tx, rng, mutable=None):
    return cls(
      step=jax.numpy.zeros((), jax.numpy.int32),
      params=params,
      opt_state=tx.init(params),
      rng=rng,
      mutable=dict(mutable or {}),
      apply_fn=apply_fn,
      tx=tx,
    )

  def apply_gradients(self, grads):
    updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
    return self.replace(
      step=self.step + 1, params=optax.apply_updates(self.params, updates), opt_state=opt_state
    )

  def step_rng(self) -> jax.Array:
    """This step's key, `fold_in(rng, step)`: what the step factory hands this network's loss."""
    return jax.random.fold_in(self.rng, self.step)

  def variables(self, params=None):
    """The `variables` dict for `apply_fn`: params plus the mutable collections."""
    return {"params": self.params if params is None else params, **self.mutable}


def init_model_state(model, tx, rng, *example_inputs, **init_kwargs) -> TrainState:
  """Initialises a Linen model and wraps it in a `TrainState`; call it under `jax.jit`.

  `rng` is split three ways: parameters, dropout (if the model uses it) and the state's own key.
  """
  param_rng, dropout_rng, state_rng = jax.random.split(rng, 3)
  variables = model.init(
    {"params": param_rng, "dropout": dropout_rng}, *example_inputs, **init_kwargs
  )
  variables = dict(variables)
  params = variables.pop("params")
  return TrainState.create(
    apply_fn=model.apply, params=params, tx=tx, rng=state_rng, mutable=variables
  )


def count_params(params) -> int:
  return sum(x.size for x in jax.tree.leaves(params))
