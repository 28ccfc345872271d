"""The train step on a gymnasium env (`env=gym:NAME`): a host loop stepping a gymnasium vector
env and calling the agent's functions, jitted and vmapped over the (one) seed.

A gymnasium env's state cannot be checkpointed in general, so every chunk starts new episodes,
reset with a seed derived from the chunk's index, and cuts the episodes still running at its end
as truncated (they bootstrap from their last observation, as at a time limit). The host envs are
then a function of the checkpointed state: a resumed run is the uninterrupted one.
"""

import jax
import jax.numpy as jnp
import numpy as np

from dljax.rl.agent import Agent, Setup
from dljax.rl.runner import Runner, summarize, track_returns, update_keys
from dljax.steps import TrainStep


def episode_seed(seed: int, chunk: int) -> int:
  """The gymnasium reset seed of chunk `chunk`: distinct per chunk, a function of the run seed."""
  return int(np.random.SeedSequence([seed, chunk]).generate_state(1)[0])


def host_train_step(agent: Agent, s: Setup, seed: int, state_sharding) -> TrainStep:
  """The loop's `TrainStep` `(runner, feed)`: a plain function, which the experiment declares
  `host_driven` (it is not compiled ahead); the runner lives on `state_sharding`."""
  act = jax.jit(jax.vmap(agent.act))
  update = jax.jit(jax.vmap(agent.update), donate_argnums=0)
  draw_noise = jax.jit(jax.vmap(agent.draw_noise, (0, None)), static_argnums=1)
  seed_update_keys = jax.jit(jax.vmap(update_keys))

  def train_step(runner: Runner, feed):
    del feed
    chunk = int(runner.updates[0]) // s.chunk_updates
    obs = s.env.reset(seed=episode_seed(seed, chunk))[0]
    returns = (np.zeros(s.num_envs, np.float32), jax.device_get(runner.last_return[0]))
    for update_index in range(s.chunk_updates):
      rollout_key, update_key = seed_update_keys(runner)
      noise = jax.device_get(draw_noise(rollout_key, (s.rollout_steps, s.num_envs)))
      steps = []
      for t in range(s.rollout_steps):
        action, extras = jax.device_get(
          act(runner.agent, obs[None], jax.tree.map(lambda x, t=t: x[:, t], noise))
        )
        # The JAX envs clip out-of-space actions (a Gaussian policy's) themselves; gymnasium's
        # bridge refuses them.
        next_obs, reward, terminated, truncated, info = s.env.step(
          np.asarray(s.env.action_space.clip(action[0]))
        )
        returns = track_returns(returns, reward, terminated | truncated)
        if update_index == s.chunk_updates - 1 and t == s.rollout_steps - 1:
          truncated = np.ones_like(truncated)  # the chunk's end cuts every running episode
        steps.append(
          dict(
            obs=obs,
            action=action[0],
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            next_obs=info["final_observation"],
            **jax.tree.map(lambda x: x[0], extras),
          )
        )
        obs = next_obs
      trajectory = jax.tree.map(lambda *xs: np.stack(xs)[None], *steps)
      agent_state, metrics = update(runner.agent, trajectory, update_key)
      runner = runner.replace(agent=agent_state, updates=runner.updates + 1)
    runner = runner.replace(
      episode_return=jnp.asarray(returns[0])[None], last_return=jnp.asarray(returns[1])[None]
    )
    return runner, summarize(runner, metrics)

  return TrainStep(train_step, state_sharding=state_sharding)
