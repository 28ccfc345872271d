"""Pure, jittable, vmappable RL environments (JAX ports of gymnasium classic control).

    env, params = make("CartPole-v1")
    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated = env.step(key, state, action, params)

See `environment` for the full contract, `AutoReset` for rollouts and
`make("gym:NAME")` for the host-side gymnasium bridge (gymnasium is only
imported when that prefix is used).
"""

from dljax.rl.envs.acrobot import Acrobot, AcrobotParams, AcrobotState
from dljax.rl.envs.cartpole import CartPole, CartPoleParams, CartPoleState
from dljax.rl.envs.environment import Environment
from dljax.rl.envs.mountain_car import MountainCar, MountainCarParams, MountainCarState
from dljax.rl.envs.pendulum import Pendulum, PendulumParams, PendulumState
from dljax.rl.envs.registry import make, registered_names
from dljax.rl.envs.spaces import Box, Discrete, Space, check_action
from dljax.rl.envs.wrappers import AutoReset, AutoResetState

__all__ = [
  "Acrobot",
  "AcrobotParams",
  "AcrobotState",
  "AutoReset",
  "AutoResetState",
  "Box",
  "CartPole",
  "CartPoleParams",
  "CartPoleState",
  "Discrete",
  "Environment",
  "MountainCar",
  "MountainCarParams",
  "MountainCarState",
  "Pendulum",
  "PendulumParams",
  "PendulumState",
  "Space",
  "check_action",
  "make",
  "registered_names",
]
