"""Evaluation: every seed's mean return over `eval_episodes` episodes of its greedy policy.

On the JAX envs the episodes run jitted and vmapped over seeds; on a gymnasium env they run on a
fresh host vector env whose own seed makes the evaluation repeatable.
"""

import jax
import jax.numpy as jnp
import numpy as np

from dljax import distributed
from dljax.rl import envs
from dljax.rl.agent import Agent, Setup


def jax_seed_returns(agent: Agent, s: Setup, num_episodes: int):
  """`(agent states, keys) -> [num_seeds]` mean returns under the greedy policy (jitted)."""
  env_step = jax.vmap(s.env.step, (0, 0, 0, None))
  max_steps = int(s.env_params.max_episode_steps)

  def seed_return(agent_state, key):
    reset_key, step_key = jax.random.split(key)
    obs, env_state = jax.vmap(s.env.reset, (0, None))(
      jax.random.split(reset_key, num_episodes), s.env_params
    )

    def one_step(carry, keys):
      obs, env_state, total, running = carry
      obs, env_state, reward, terminated, truncated = env_step(
        keys, env_state, agent.greedy(agent_state, obs), s.env_params
      )
      return (obs, env_state, total + reward * running, running & ~(terminated | truncated)), None

    carry = (obs, env_state, jnp.zeros(num_episodes), jnp.ones(num_episodes, bool))
    keys = jax.random.split(step_key, (max_steps, num_episodes))
    (_, _, total, _), _ = jax.lax.scan(one_step, carry, keys)
    return total.mean()

  return jax.jit(jax.vmap(seed_return))


def host_seed_returns(agent: Agent, env_name: str, num_episodes: int, seed: int):
  """The same on a fresh gymnasium vector env: the first episode of each of its envs."""
  greedy = jax.jit(jax.vmap(agent.greedy))

  def seed_return(agent_states, keys):
    del keys  # the env's own seed makes the evaluation repeatable
    env, _ = envs.make(env_name, num_envs=num_episodes)
    obs = env.reset(seed=seed)[0]
    total, running = np.zeros(num_episodes), np.ones(num_episodes, bool)
    while running.any():
      action = env.action_space.clip(greedy(agent_states, obs[None])[0])
      obs, reward, terminated, truncated, _ = env.step(np.asarray(action))
      total += reward * running
      running &= ~(terminated | truncated)
    env.close()
    return total.mean()[None]

  return seed_return


def make_evaluate(seed_returns, keys, on_host: bool):
  """The loop's `evaluate(runners)`: the seeds' mean returns summarised across seeds; its
  `warm_up(abstract runners)`, which compiles jitted `seed_returns` ahead (None when `on_host`:
  host rollouts have nothing to compile ahead); and `last_returns()`, every seed's return from the
  latest evaluation (for `summary.json`, where a distribution over many seed sets is assembled
  from them)."""
  compiled = {"seed_returns": seed_returns}
  last = {"returns": []}

  def warm_up(abstract_runners):
    compiled["seed_returns"] = seed_returns.lower(abstract_runners.agent, keys).compile()

  def evaluate(runners):
    returns = distributed.fetch(
      compiled["seed_returns"](runners.agent, keys)
    )  # each device's seeds
    last["returns"] = [round(float(r), 2) for r in returns]
    return {
      "mean_return": float(returns.mean()),
      "min_seed_return": float(returns.min()),
      "median_seed_return": float(np.median(returns)),
      "max_seed_return": float(returns.max()),
    }

  return evaluate, None if on_host else warm_up, lambda: last["returns"]
