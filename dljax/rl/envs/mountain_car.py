"""MountainCar-v0 as a pure JAX environment (gymnasium's `MountainCarEnv` dynamics).

An underpowered car in a valley must reach the flag on the right hill; actions
accelerate left (0), not at all (1) or right (2). Reward is -1 per step; the
episode terminates once `position >= goal_position` with
`velocity >= goal_velocity`.
"""

import jax
import jax.numpy as jnp
from flax import struct

from dljax.rl.envs.environment import Environment
from dljax.rl.envs.spaces import Box, Discrete

_MIN_POSITION = -1.2
_MAX_POSITION = 0.6
_MAX_SPEED = 0.07


@struct.dataclass
class MountainCarParams:
  min_position: float = _MIN_POSITION
  max_position: float = _MAX_POSITION
  max_speed: float = _MAX_SPEED
  goal_position: float = 0.5
  goal_velocity: float = 0.0
  force: float = 0.001
  gravity: float = 0.0025
  max_episode_steps: int = 200


@struct.dataclass
class MountainCarState:
  position: jax.Array
  velocity: jax.Array
  time: jax.Array


class MountainCar(Environment[MountainCarParams, MountainCarState]):
  name = "MountainCar-v0"
  observation_space = Box(
    low=(_MIN_POSITION, -_MAX_SPEED), high=(_MAX_POSITION, _MAX_SPEED), shape=(2,)
  )
  action_space = Discrete(3)

  @property
  def default_params(self) -> MountainCarParams:
    return MountainCarParams()

  def initial_state(self, key: jax.Array, params: MountainCarParams) -> MountainCarState:
    position = jax.random.uniform(key, (), jnp.float32, -0.6, -0.4)
    return MountainCarState(position, jnp.float32(0.0), time=jnp.int32(0))

  def transition(self, key, state, action, params):
    velocity = state.velocity + (
      (action - 1) * params.force - jnp.cos(3 * state.position) * params.gravity
    )
    velocity = jnp.clip(velocity, -params.max_speed, params.max_speed)
    position = jnp.clip(state.position + velocity, params.min_position, params.max_position)
    # Hitting the left wall is inelastic.
    velocity = jnp.where((position == params.min_position) & (velocity < 0), 0.0, velocity)
    terminated = (position >= params.goal_position) & (velocity >= params.goal_velocity)
    next_state = state.replace(position=position, velocity=velocity)
    return next_state, jnp.float32(-1.0), terminated

  def observation(self, state, params):
    return jnp.stack([state.position, state.velocity])
