"""What an RL agent is to the drivers (`Agent`) and the run's sizes (`Setup`, from the config).

An agent is a handful of pure functions of one seed's state; the drivers (`dljax.rl.chunk` on
the JAX envs, `dljax.rl.gym_driver` on gymnasium's) vmap, scan and jit them. PPO and DQN
(`dljax.rl.ppo`, `dljax.rl.dqn`) each build one from a config and a `Setup`.
"""

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from dljax.errors import DljaxError
from dljax.rl import envs
from dljax.rl.envs.registry import GYM_PREFIX


@dataclasses.dataclass(frozen=True)
class Agent:
  """An RL agent as pure functions of one seed's state; the drivers vmap, scan and jit them.

  init: key -> agent state (train state, target network, replay buffer...).
  draw_noise: (key, (T, N)) -> the policy's randomness for a T-step rollout of N envs.
  act: (agent state, obs [N, ...], noise [N, ...]) -> (actions, extras); the extras (log-probs,
    values) go into the trajectory.
  update: (agent state, trajectory, key) -> (agent state, metrics). The trajectory holds
    [T, N, ...] arrays `obs`, `action`, `reward`, `terminated`, `truncated`, `next_obs` (the
    observation after the step, before an auto-reset: what truncated episodes bootstrap from) and
    the extras.
  greedy: (agent state, obs [N, ...]) -> actions; the evaluation policy.
  identity: what makes checkpoints compatible, beyond the env and sizes.
  """

  init: Callable
  draw_noise: Callable
  act: Callable
  update: Callable
  greedy: Callable
  identity: dict


@dataclasses.dataclass(frozen=True)
class Setup:
  """The sizes every driver needs, derived once from the config."""

  env: Any
  env_params: Any
  is_gym: bool
  num_seeds: int
  num_envs: int
  rollout_steps: int
  chunk_updates: int
  num_chunks: int

  @property
  def num_updates(self) -> int:
    return self.chunk_updates * self.num_chunks

  @property
  def steps_per_update(self) -> int:
    return self.num_envs * self.rollout_steps

  @property
  def steps_per_chunk(self) -> int:
    return self.chunk_updates * self.steps_per_update


def setup(config) -> Setup:
  """The environment and run sizes; clear errors for bad names and sizes."""
  for key in ("num_seeds", "num_envs", "rollout_steps", "chunk_updates", "eval_episodes"):
    if config[key] < 1:
      raise DljaxError(f"{key}={config[key]} must be at least 1")
  is_gym = config.env.startswith(GYM_PREFIX)
  if is_gym and config.num_seeds != 1:
    raise DljaxError(
      f"{config.env} is stepped on the host, one seed at a time; add --config.num_seeds=1"
    )
  env, env_params = (
    envs.make(config.env, num_envs=config.num_envs) if is_gym else envs.make(config.env)
  )
  updates = max(1, config.total_env_steps // (config.num_envs * config.rollout_steps))
  num_chunks = config.num_steps or math.ceil(updates / config.chunk_updates)
  return Setup(
    env=env,
    env_params=env_params,
    is_gym=is_gym,
    num_seeds=config.num_seeds,
    num_envs=config.num_envs,
    rollout_steps=config.rollout_steps,
    chunk_updates=config.chunk_updates,
    num_chunks=num_chunks,
  )
