"""One seed's training state between updates (`Runner`) and the bookkeeping both drivers share:
each update's keys, the episode returns, and the scalars the loop logs per chunk.

Stacked over seeds, the `Runner` is the loop's state, the pytree it checkpoints; everything a
chunk draws is a function of it, so a resumed run is bitwise the uninterrupted one.
"""

from typing import Any

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class Runner:
  """One seed's training state between updates (stacked over seeds, it is the loop's state)."""

  agent: Any
  env_state: Any  # None with a gymnasium env, whose state lives on the host
  obs: Any  # likewise
  episode_return: jax.Array  # [N] running return of each env's current episode
  last_return: jax.Array  # [N] return of each env's last finished episode
  rng: jax.Array
  updates: jax.Array

  @classmethod
  def start(cls, agent, env_state, obs, rng, num_envs: int) -> "Runner":
    """A seed's runner before its first update: no episode finished, no update made."""
    zeros = jnp.zeros(num_envs)
    return cls(
      agent=agent,
      env_state=env_state,
      obs=obs,
      episode_return=zeros,
      last_return=zeros,
      rng=rng,
      updates=jnp.int32(0),
    )


def update_keys(runner: Runner):
  """This update's rollout and learning keys, a function of the update count (resume-safe)."""
  rollout_key, update_key = jax.random.split(jax.random.fold_in(runner.rng, runner.updates))
  return rollout_key, update_key


def track_returns(returns, reward, done):
  """`(episode_return, last_return)` after a step: a finished episode's return moves to the
  second, and the first starts again from 0."""
  episode_return, last_return = returns
  episode_return = episode_return + reward
  return jnp.where(done, 0.0, episode_return), jnp.where(done, episode_return, last_return)


def summarize(runners: Runner, metrics: dict) -> dict:
  """Scalars for the loop: learning metrics averaged, returns across seeds (mean, min, max)."""
  seed_returns = runners.last_return.mean(axis=-1)
  return {
    **{k: v.mean() for k, v in metrics.items()},
    "return_mean": seed_returns.mean(),
    "return_min": seed_returns.min(),
    "return_max": seed_returns.max(),
  }
