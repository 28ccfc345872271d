"""Host-side bridge to gymnasium vector environments (`make("gym:NAME")`).

For host loops that want a gymnasium-registered environment with the same
conventions as the JAX envs: numpy arrays in and out, float32 observations and
rewards, dljax `spaces` with `check_action` on every step, and same-step
auto-reset with the finished episode's last observation kept for
bootstrapping. gymnasium is an optional dependency and is only imported here.
"""

import difflib
from typing import Any

import numpy as np

from dljax.rl.envs.errors import EnvValueError, MissingGymnasiumError
from dljax.rl.envs.spaces import Box, Discrete, Space, check_action


def _import_gymnasium():
  try:
    import gymnasium
  except ImportError as error:
    raise MissingGymnasiumError(
      "the 'gym:' environments need gymnasium: pip install gymnasium"
    ) from error
  return gymnasium


def _bound_description(values: np.ndarray):
  """Hashable `Box` bound: a scalar if uniform (e.g. images), else nested tuples."""
  if np.all(values == values.flat[0]):
    return float(values.flat[0])

  def as_tuples(nested):
    return tuple(map(as_tuples, nested)) if isinstance(nested, list) else nested

  return as_tuples(values.astype(float).tolist())


def space_from_gymnasium(space) -> Space:
  """Describe a gymnasium `Discrete` (starting at 0) or `Box` space."""
  gymnasium = _import_gymnasium()
  if isinstance(space, gymnasium.spaces.Discrete) and int(space.start) == 0:
    return Discrete(int(space.n))
  if isinstance(space, gymnasium.spaces.Box):
    low, high = _bound_description(space.low), _bound_description(space.high)
    return Box(low, high, tuple(space.shape))
  raise EnvValueError(f"gymnasium space {space} has no dljax equivalent")


class GymVectorEnv:
  """`num_envs` copies of a gymnasium env, stepped together on the host.

  `step(actions)` returns `(obs, reward, terminated, truncated, info)`,
  all batched over envs. An env that finishes is reset within the same
  step (gymnasium's `AutoresetMode.SAME_STEP`): `obs` is then the new
  episode's first observation and `info["final_observation"]` holds the
  finished episode's last one (for other envs it equals `obs`).
  """

  def __init__(
    self,
    env_id: str,
    num_envs: int = 1,
    vectorization_mode: str = "sync",
    **env_kwargs: Any,
  ):
    gymnasium = _import_gymnasium()
    if env_id not in gymnasium.registry:
      suggestions = difflib.get_close_matches(env_id, list(gymnasium.registry), n=5)
      raise EnvValueError(
        f"gymnasium has no environment {env_id!r} registered"
        + (f"; close matches: {', '.join(suggestions)}" if suggestions else "")
      )
    self.name = env_id
    self.num_envs = num_envs
    self.vector_env = gymnasium.make_vec(
      env_id,
      num_envs=num_envs,
      vectorization_mode=vectorization_mode,
      vector_kwargs={"autoreset_mode": gymnasium.vector.AutoresetMode.SAME_STEP},
      **env_kwargs,
    )
    self.observation_space = space_from_gymnasium(self.vector_env.single_observation_space)
    self.action_space = space_from_gymnasium(self.vector_env.single_action_space)

  def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict]:
    obs, info = self.vector_env.reset(seed=seed)
    return np.asarray(obs, np.float32), info

  def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    check_action(self.action_space, actions, batch_shape=(self.num_envs,))
    obs, reward, terminated, truncated, info = self.vector_env.step(
      np.asarray(actions, self.vector_env.single_action_space.dtype)
    )
    obs = np.asarray(obs, np.float32)
    final_observation = obs.copy()
    for index in np.flatnonzero(info.get("_final_obs", ())):
      final_observation[index] = info["final_obs"][index]
    info["final_observation"] = final_observation
    return (
      obs,
      np.asarray(reward, np.float32),
      np.asarray(terminated, bool),
      np.asarray(truncated, bool),
      info,
    )

  def close(self) -> None:
    self.vector_env.close()

  def __repr__(self) -> str:
    return f"GymVectorEnv({self.name}, num_envs={self.num_envs})"
