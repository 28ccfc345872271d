"""Name -> environment registry behind `dljax.rl.envs.make`."""

from typing import Any

from dljax.rl.envs.acrobot import Acrobot
from dljax.rl.envs.cartpole import CartPole
from dljax.rl.envs.environment import Environment
from dljax.rl.envs.errors import EnvValueError
from dljax.rl.envs.mountain_car import MountainCar
from dljax.rl.envs.pendulum import Pendulum

GYM_PREFIX = "gym:"

_ENVIRONMENTS: dict[str, type[Environment]] = {
  env_class.name: env_class for env_class in (CartPole, Acrobot, MountainCar, Pendulum)
}


def registered_names() -> tuple[str, ...]:
  return tuple(_ENVIRONMENTS)


def make(name: str, **gym_kwargs: Any) -> tuple[Any, Any]:
  """Build an environment by name; returns `(env, default_params)`.

  `"CartPole-v1"`, `"Acrobot-v1"`, `"MountainCar-v0"` and
  `"Pendulum-v1"` give pure JAX envs and take no keyword arguments.
  `"gym:<gymnasium id>"` gives a host-side `GymVectorEnv` (keyword
  arguments go to it, e.g. `num_envs`) and `None` params; gymnasium is
  only imported in that case.
  """
  if name.startswith(GYM_PREFIX):
    from dljax.rl.envs.gym_bridge import GymVectorEnv

    return GymVectorEnv(name[len(GYM_PREFIX) :], **gym_kwargs), None
  if name not in _ENVIRONMENTS:
    raise EnvValueError(
      f"unknown environment {name!r}; known environments: {', '.join(_ENVIRONMENTS)} "
      f"(or '{GYM_PREFIX}<gymnasium id>' for the gymnasium bridge)"
    )
  if gym_kwargs:
    raise TypeError(
      f"{name} takes no keyword arguments (got {sorted(gym_kwargs)}); "
      "change its params pytree instead"
    )
  env = _ENVIRONMENTS[name]()
  return env, env.default_params
