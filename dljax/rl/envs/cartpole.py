"""CartPole-v1 as a pure JAX environment (dynamics of gymnasium's `CartPoleEnv`).

A pole hinged on a cart; actions push the cart left (0) or right (1). Reward
is +1 per step including the terminating one; the episode terminates when the
cart leaves `[-x_threshold, x_threshold]` or the pole tilts beyond
`theta_threshold_radians`. Integration is explicit Euler as in gymnasium's
default `kinematics_integrator="euler"`.
"""

import math

import jax
import jax.numpy as jnp
from flax import struct

from dljax.rl.envs.environment import Environment
from dljax.rl.envs.spaces import Box, Discrete

_X_THRESHOLD = 2.4
_THETA_THRESHOLD_RADIANS = 12 * 2 * math.pi / 360


@struct.dataclass
class CartPoleParams:
  gravity: float = 9.8
  masscart: float = 1.0
  masspole: float = 0.1
  half_pole_length: float = 0.5
  force_mag: float = 10.0
  tau: float = 0.02
  x_threshold: float = _X_THRESHOLD
  theta_threshold_radians: float = _THETA_THRESHOLD_RADIANS
  max_episode_steps: int = 500


@struct.dataclass
class CartPoleState:
  x: jax.Array
  x_dot: jax.Array
  theta: jax.Array
  theta_dot: jax.Array
  time: jax.Array


class CartPole(Environment[CartPoleParams, CartPoleState]):
  name = "CartPole-v1"
  # Bounds are twice the termination thresholds, as in gymnasium.
  observation_space = Box(
    low=(-2 * _X_THRESHOLD, -math.inf, -2 * _THETA_THRESHOLD_RADIANS, -math.inf),
    high=(2 * _X_THRESHOLD, math.inf, 2 * _THETA_THRESHOLD_RADIANS, math.inf),
    shape=(4,),
  )
  action_space = Discrete(2)

  @property
  def default_params(self) -> CartPoleParams:
    return CartPoleParams()

  def initial_state(self, key: jax.Array, params: CartPoleParams) -> CartPoleState:
    x, x_dot, theta, theta_dot = jax.random.uniform(key, (4,), jnp.float32, -0.05, 0.05)
    return CartPoleState(x, x_dot, theta, theta_dot, time=jnp.int32(0))

  def transition(self, key, state, action, params):
    force = jnp.where(action == 1, params.force_mag, -params.force_mag)
    total_mass = params.masspole + params.masscart
    polemass_length = params.masspole * params.half_pole_length
    cos_theta = jnp.cos(state.theta)
    sin_theta = jnp.sin(state.theta)

    temp = (force + polemass_length * state.theta_dot**2 * sin_theta) / total_mass
    theta_acc = (params.gravity * sin_theta - cos_theta * temp) / (
      params.half_pole_length * (4.0 / 3.0 - params.masspole * cos_theta**2 / total_mass)
    )
    x_acc = temp - polemass_length * theta_acc * cos_theta / total_mass

    next_state = state.replace(
      x=state.x + params.tau * state.x_dot,
      x_dot=state.x_dot + params.tau * x_acc,
      theta=state.theta + params.tau * state.theta_dot,
      theta_dot=state.theta_dot + params.tau * theta_acc,
    )
    terminated = (jnp.abs(next_state.x) > params.x_threshold) | (
      jnp.abs(next_state.theta) > params.theta_threshold_radians
    )
    return next_state, jnp.float32(1.0), terminated

  def observation(self, state, params):
    return jnp.stack([state.x, state.x_dot, state.theta, state.theta_dot])
