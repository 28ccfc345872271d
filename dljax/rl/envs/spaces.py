"""Observation/action space descriptions for dljax environments.

Spaces are small, hashable host-side descriptions (not pytrees): they say what
shape and range observations and actions have, sample random actions inside
jitted code, clip actions into range under jit, and validate concrete actions
on the host (`check_action`).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from dljax.rl.envs.errors import EnvValueError


@dataclasses.dataclass(frozen=True)
class Discrete:
  """Integer actions/observations in `{0, ..., n - 1}` (scalar, int32)."""

  n: int

  shape = ()
  dtype = jnp.int32

  def sample(self, key: jax.Array) -> jax.Array:
    return jax.random.randint(key, (), 0, self.n, dtype=self.dtype)

  def clip(self, action: jax.Array) -> jax.Array:
    return jnp.clip(action, 0, self.n - 1).astype(self.dtype)


@dataclasses.dataclass(frozen=True)
class Box:
  """Float32 arrays of fixed `shape` with elementwise bounds.

  `low` / `high` are scalars or tuples broadcastable to `shape`
  (tuples keep the space hashable so environments can be static jit args).
  """

  low: float | tuple[float, ...]
  high: float | tuple[float, ...]
  shape: tuple[int, ...]

  dtype = jnp.float32

  def bounds(self) -> tuple[np.ndarray, np.ndarray]:
    low = np.broadcast_to(np.asarray(self.low, np.float32), self.shape)
    high = np.broadcast_to(np.asarray(self.high, np.float32), self.shape)
    return low, high

  def sample(self, key: jax.Array) -> jax.Array:
    low, high = self.bounds()
    return jax.random.uniform(key, self.shape, self.dtype, low, high)

  def clip(self, action: jax.Array) -> jax.Array:
    low, high = self.bounds()
    return jnp.clip(jnp.asarray(action, self.dtype), low, high)


Space = Discrete | Box


def check_action(space: Space, action, batch_shape: tuple[int, ...] = ()) -> None:
  """Raise `EnvValueError` (a `ValueError`) unless the concrete `action` lies in `space`.

  `batch_shape` is the expected leading shape of a batch of actions (e.g.
  `(num_envs,)` for a vector env). Only usable on concrete (host or
  device) values; under `jit`/`vmap` environments clip instead.
  """
  values = np.asarray(action)
  expected_shape = tuple(batch_shape) + space.shape
  if values.shape != expected_shape:
    raise EnvValueError(
      f"action {action!r} has shape {values.shape}, expected {expected_shape} for {space}"
    )
  if isinstance(space, Discrete):
    if not np.issubdtype(values.dtype, np.integer):
      raise EnvValueError(f"action {action!r} has dtype {values.dtype}; {space} needs integers")
    in_range = (values >= 0) & (values < space.n)
  else:
    if not np.issubdtype(values.dtype, np.number):
      raise EnvValueError(f"action {action!r} is not numeric; {space} needs floats")
    low, high = space.bounds()
    # Written positively so that NaN counts as out of range.
    in_range = (values >= low) & (values <= high)
  if not np.all(in_range):
    raise EnvValueError(f"action {action!r} is outside the action space {space}")
