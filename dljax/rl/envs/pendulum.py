"""Pendulum-v1 as a pure JAX environment (dynamics of gymnasium's `PendulumEnv`).

Swing a frictionless pendulum up and keep it upright with a continuous torque
in `[-2, 2]` (action shape `(1,)`). The reward is
`-(angle**2 + 0.1 * angular_velocity**2 + 0.001 * torque**2)` with the angle
normalised to `[-pi, pi)`; the episode never terminates, only truncates.
Out-of-range torques are clipped to `[-2, 2]` under jit, as gymnasium does.
"""

import math

import jax
import jax.numpy as jnp
from flax import struct

from dljax.rl.envs.environment import Environment
from dljax.rl.envs.physics import wrap_angle
from dljax.rl.envs.spaces import Box

# The torque limit defines the action space, so it is a constant, not a param.
MAX_TORQUE = 2.0
_MAX_SPEED = 8.0


@struct.dataclass
class PendulumParams:
  max_speed: float = _MAX_SPEED
  dt: float = 0.05
  gravity: float = 10.0
  mass: float = 1.0
  length: float = 1.0
  max_episode_steps: int = 200


@struct.dataclass
class PendulumState:
  theta: jax.Array
  theta_dot: jax.Array
  time: jax.Array


class Pendulum(Environment[PendulumParams, PendulumState]):
  name = "Pendulum-v1"
  observation_space = Box(low=(-1.0, -1.0, -_MAX_SPEED), high=(1.0, 1.0, _MAX_SPEED), shape=(3,))
  action_space = Box(low=-MAX_TORQUE, high=MAX_TORQUE, shape=(1,))

  @property
  def default_params(self) -> PendulumParams:
    return PendulumParams()

  def initial_state(self, key: jax.Array, params: PendulumParams) -> PendulumState:
    theta, theta_dot = jax.random.uniform(
      key,
      (2,),
      jnp.float32,
      jnp.array([-math.pi, -1.0]),
      jnp.array([math.pi, 1.0]),
    )
    return PendulumState(theta, theta_dot, time=jnp.int32(0))

  def transition(self, key, state, action, params):
    torque = action[0]
    cost = wrap_angle(state.theta) ** 2 + 0.1 * state.theta_dot**2 + 0.001 * torque**2
    theta_dot = (
      state.theta_dot
      + (
        3 * params.gravity / (2 * params.length) * jnp.sin(state.theta)
        + 3.0 / (params.mass * params.length**2) * torque
      )
      * params.dt
    )
    theta_dot = jnp.clip(theta_dot, -params.max_speed, params.max_speed)
    next_state = state.replace(theta=state.theta + theta_dot * params.dt, theta_dot=theta_dot)
    return next_state, -cost, jnp.bool_(False)

  def observation(self, state, params):
    return jnp.stack([jnp.cos(state.theta), jnp.sin(state.theta), state.theta_dot])
