"""The rollout: `rollout_steps` steps of `num_envs` auto-resetting JAX envs under an agent's policy.

XLA:CPU pays a few microseconds per operation, and a rollout step is tiny, so all the randomness
of a rollout (policy noise, step keys, the candidate start of a new episode at every step) is
drawn in a few batched operations before the rollout's `scan` instead of splitting keys in every
step; `AutoReset.step_or_restart` takes those pre-drawn starts.
"""

import jax

from dljax.rl.agent import Agent, Setup
from dljax.rl.envs.wrappers import AutoReset, AutoResetState
from dljax.rl.runner import Runner, track_returns


def rollout(agent: Agent, s: Setup, runner: Runner, key):
  """One seed's rollout from `runner`: the runner after it, and the [T, N, ...] trajectory."""
  shape = (s.rollout_steps, s.num_envs)
  reset_key, step_key, noise_key = jax.random.split(key, 3)
  reset_all = jax.vmap(jax.vmap(s.env.reset, (0, None)), (0, None))
  restarts = reset_all(jax.random.split(reset_key, shape), s.env_params)
  env_step = jax.vmap(AutoReset(s.env).step_or_restart, (0, 0, 0, None, 0))

  def one_step(carry, xs):
    env_state, obs, returns = carry
    restart, keys, noise = xs
    action, extras = agent.act(runner.agent, obs, noise)
    obs_after, env_state, reward, terminated, truncated = env_step(
      keys, env_state, action, s.env_params, restart
    )
    returns = track_returns(returns, reward, terminated | truncated)
    step = dict(
      obs=obs,
      action=action,
      reward=reward,
      terminated=terminated,
      truncated=truncated,
      next_obs=env_state.final_observation,
      **extras,
    )
    return (env_state, obs_after, returns), step

  env_state = AutoResetState(runner.env_state, final_observation=runner.obs)
  carry = (env_state, runner.obs, (runner.episode_return, runner.last_return))
  xs = (restarts, jax.random.split(step_key, shape), agent.draw_noise(noise_key, shape))
  (env_state, obs, (episode_return, last_return)), trajectory = jax.lax.scan(one_step, carry, xs)
  runner = runner.replace(
    env_state=env_state.env_state,
    obs=obs,
    episode_return=episode_return,
    last_return=last_return,
  )
  return runner, trajectory
