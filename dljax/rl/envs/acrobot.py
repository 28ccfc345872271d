"""Acrobot-v1 as a pure JAX environment (dynamics of gymnasium's `AcrobotEnv`).

Two links hang from a fixed joint; the action applies torque -1, 0 or +1 to
the joint between the links. Reward is -1 per step and 0 on the terminating
step, which is reached when the free end swings above `1.0` over the fixed
joint. Uses gymnasium's defaults: the "book" equations of motion, no torque
noise and one classic RK4 step of `dt` per env step.
"""

import math

import jax
import jax.numpy as jnp
from flax import struct

from dljax.rl.envs.environment import Environment
from dljax.rl.envs.physics import rk4_step, wrap_angle
from dljax.rl.envs.spaces import Box, Discrete

_MAX_VEL_1 = 4 * math.pi
_MAX_VEL_2 = 9 * math.pi
_TORQUES = (-1.0, 0.0, 1.0)


@struct.dataclass
class AcrobotParams:
  dt: float = 0.2
  # Link 2's length only matters for rendering, so it is not a parameter.
  link_length_1: float = 1.0
  link_mass_1: float = 1.0
  link_mass_2: float = 1.0
  link_com_pos_1: float = 0.5
  link_com_pos_2: float = 0.5
  link_moi: float = 1.0
  gravity: float = 9.8
  max_vel_1: float = _MAX_VEL_1
  max_vel_2: float = _MAX_VEL_2
  max_episode_steps: int = 500


@struct.dataclass
class AcrobotState:
  theta1: jax.Array
  theta2: jax.Array
  dtheta1: jax.Array
  dtheta2: jax.Array
  time: jax.Array


def _joint_accelerations(joints: jax.Array, torque: jax.Array, p: AcrobotParams) -> jax.Array:
  """d/dt of `(theta1, theta2, dtheta1, dtheta2)` ("book" dynamics)."""
  theta1, theta2, dtheta1, dtheta2 = joints
  m1, m2 = p.link_mass_1, p.link_mass_2
  l1, lc1, lc2 = p.link_length_1, p.link_com_pos_1, p.link_com_pos_2
  moi = p.link_moi
  g = p.gravity
  d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * jnp.cos(theta2)) + 2 * moi
  d2 = m2 * (lc2**2 + l1 * lc2 * jnp.cos(theta2)) + moi
  phi2 = m2 * lc2 * g * jnp.cos(theta1 + theta2 - math.pi / 2.0)
  phi1 = (
    -m2 * l1 * lc2 * dtheta2**2 * jnp.sin(theta2)
    - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * jnp.sin(theta2)
    + (m1 * lc1 + m2 * l1) * g * jnp.cos(theta1 - math.pi / 2)
    + phi2
  )
  ddtheta2 = (torque + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * jnp.sin(theta2) - phi2) / (
    m2 * lc2**2 + moi - d2**2 / d1
  )
  ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
  return jnp.stack([dtheta1, dtheta2, ddtheta1, ddtheta2])


class Acrobot(Environment[AcrobotParams, AcrobotState]):
  name = "Acrobot-v1"
  observation_space = Box(
    low=(-1.0, -1.0, -1.0, -1.0, -_MAX_VEL_1, -_MAX_VEL_2),
    high=(1.0, 1.0, 1.0, 1.0, _MAX_VEL_1, _MAX_VEL_2),
    shape=(6,),
  )
  action_space = Discrete(len(_TORQUES))

  @property
  def default_params(self) -> AcrobotParams:
    return AcrobotParams()

  def initial_state(self, key: jax.Array, params: AcrobotParams) -> AcrobotState:
    theta1, theta2, dtheta1, dtheta2 = jax.random.uniform(key, (4,), jnp.float32, -0.1, 0.1)
    return AcrobotState(theta1, theta2, dtheta1, dtheta2, time=jnp.int32(0))

  def transition(self, key, state, action, params):
    torque = jnp.asarray(_TORQUES, jnp.float32)[action]
    joints = jnp.stack([state.theta1, state.theta2, state.dtheta1, state.dtheta2])
    theta1, theta2, dtheta1, dtheta2 = rk4_step(
      lambda y: _joint_accelerations(y, torque, params), joints, params.dt
    )
    next_state = state.replace(
      theta1=wrap_angle(theta1),
      theta2=wrap_angle(theta2),
      dtheta1=jnp.clip(dtheta1, -params.max_vel_1, params.max_vel_1),
      dtheta2=jnp.clip(dtheta2, -params.max_vel_2, params.max_vel_2),
    )
    terminated = -jnp.cos(next_state.theta1) - jnp.cos(next_state.theta2 + next_state.theta1) > 1.0
    reward = jnp.where(terminated, 0.0, -1.0)
    return next_state, reward, terminated

  def observation(self, state, params):
    return jnp.stack(
      [
        jnp.cos(state.theta1),
        jnp.sin(state.theta1),
        jnp.cos(state.theta2),
        jnp.sin(state.theta2),
        state.dtheta1,
        state.dtheta2,
      ]
    )
