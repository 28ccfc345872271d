"""Environment wrappers; currently `AutoReset` for jitted rollouts."""

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from dljax.rl.envs.environment import Environment


@struct.dataclass
class AutoResetState:
  """State of an `AutoReset` env.

  `final_observation` is the observation the inner env produced on the
  latest step *before* any reset: on a terminated/truncated step it is the
  last observation of the finished episode (use it to bootstrap values on
  truncation); otherwise it equals the returned observation.
  """

  env_state: Any
  final_observation: jax.Array


class AutoReset:
  """Start a new episode in the same `step` that ends the previous one.

  Same reset/step signatures as `Environment`. When the inner step returns
  `terminated` or `truncated`, the returned observation and state belong
  to a freshly reset episode, while reward and both flags are those of the
  finishing step. Both branches are computed every step (a `jnp.where`
  select), which keeps the step branch-free under `vmap`.
  """

  def __init__(self, env: Environment):
    self.env = env
    self.name = env.name
    self.observation_space = env.observation_space
    self.action_space = env.action_space

  @property
  def default_params(self):
    return self.env.default_params

  def reset(self, key: jax.Array, params) -> tuple[jax.Array, AutoResetState]:
    obs, env_state = self.env.reset(key, params)
    return obs, AutoResetState(env_state, final_observation=obs)

  def step(self, key: jax.Array, state: AutoResetState, action, params):
    step_key, reset_key = jax.random.split(key)
    return self.step_or_restart(step_key, state, action, params, self.env.reset(reset_key, params))

  def step_or_restart(self, key: jax.Array, state: AutoResetState, action, params, restart):
    """`step` with the next episode's start given: `restart` is `(obs, state)` of the inner
    env's `reset`. A rollout draws the starts of all its steps ahead in one batched call:
    XLA:CPU pays a few microseconds per operation, and an env step is tiny."""
    reset_obs, reset_env_state = restart
    obs, env_state, reward, terminated, truncated = self.env.step(
      key, state.env_state, action, params
    )
    done = terminated | truncated
    next_state = AutoResetState(
      env_state=jax.tree.map(
        lambda fresh, current: jnp.where(done, fresh, current),
        reset_env_state,
        env_state,
      ),
      final_observation=obs,
    )
    return (
      jnp.where(done, reset_obs, obs),
      next_state,
      reward,
      terminated,
      truncated,
    )

  def __repr__(self) -> str:
    return f"AutoReset({self.env!r})"
