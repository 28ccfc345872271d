"""Base class for pure, jittable and vmappable dljax environments.

An environment object is a stateless, hashable description (spaces and
dynamics); everything that changes lives in explicit pytrees:

* `params`: a `flax.struct.dataclass` of physical constants plus
  `max_episode_steps`. All leaves are data, so params can be vmapped (e.g. a
  different gravity per parallel env).
* `state`: a `flax.struct.dataclass` holding the physical state plus
  `time`, the number of steps taken in the current episode.

API (all pure functions of their inputs)::

    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated = env.step(key, state, action, params)

`truncated` becomes true when `time` reaches `params.max_episode_steps`
(gymnasium's `TimeLimit`); it can be true together with `terminated`.
Observations and rewards are float32, flags are bool. Stepping an env after
`terminated` without resetting is undefined, as in gymnasium; use
`AutoReset` for rollouts.

Out-of-space actions: when `step` sees a concrete action (plain non-jitted
call) it raises `EnvValueError` (a `ValueError`) via `check_action`. Under `jit`/`vmap`
the action cannot be inspected, so it is clipped into the space instead:
discrete actions to `[0, n - 1]`, box actions to `[low, high]` (which is
what gymnasium's Pendulum does with its torque).
"""

import abc
from typing import Any, Generic, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from dljax.rl.envs.spaces import Box, Space, check_action

Params = TypeVar("Params")
State = TypeVar("State")


def is_concrete(value: Any) -> bool:
  """Whether `value` can be read on the host (i.e. is not a JAX tracer)."""
  try:
    np.asarray(value)
  except jax.errors.TracerArrayConversionError:
    return False
  return True


class Environment(abc.ABC, Generic[Params, State]):
  """Shared reset/step logic: action validation, time limit and dtypes.

  Subclasses set `name`, `observation_space` and `action_space` and
  implement the physics hooks `default_params`, `initial_state`,
  `transition` and `observation`.
  """

  name: str
  observation_space: Box
  action_space: Space

  @property
  @abc.abstractmethod
  def default_params(self) -> Params:
    """Gymnasium's constants and time limit for this environment."""

  @abc.abstractmethod
  def initial_state(self, key: jax.Array, params: Params) -> State:
    """Sample the first state of an episode (with `time == 0`)."""

  @abc.abstractmethod
  def transition(
    self, key: jax.Array, state: State, action: jax.Array, params: Params
  ) -> tuple[State, jax.Array, jax.Array]:
    """Advance the physics one step; returns (state, reward, terminated).

    `action` is already clipped into the action space. `state.time` is
    updated by the caller.
    """

  @abc.abstractmethod
  def observation(self, state: State, params: Params) -> jax.Array:
    """Observation of `state` (any float dtype; cast to float32 by caller)."""

  def reset(self, key: jax.Array, params: Params) -> tuple[jax.Array, State]:
    state = self.initial_state(key, params)
    return self._observe(state, params), state

  def step(
    self, key: jax.Array, state: State, action: Any, params: Params
  ) -> tuple[jax.Array, State, jax.Array, jax.Array, jax.Array]:
    if is_concrete(action):
      check_action(self.action_space, action)
    next_state, reward, terminated = self.transition(
      key, state, self.action_space.clip(action), params
    )
    next_state = next_state.replace(time=state.time + 1)
    truncated = next_state.time >= params.max_episode_steps
    return (
      self._observe(next_state, params),
      next_state,
      jnp.asarray(reward, jnp.float32),
      jnp.asarray(terminated, jnp.bool_),
      truncated,
    )

  def _observe(self, state: State, params: Params) -> jax.Array:
    return jnp.asarray(self.observation(state, params), jnp.float32)

  def __repr__(self) -> str:
    return f"{type(self).__name__}({self.name})"
