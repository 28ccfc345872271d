"""Double DQN with a target network, an epsilon-greedy schedule and a device-resident replay buffer.

Each update folds `rollout_steps` steps of `num_envs` envs into `dqn.n_step`-step transitions
(n-step returns carry value n steps per target refresh) and writes them into a circular replay
buffer (plain device arrays, part of the checkpointed state), then, once `learning_starts` are in,
takes `dqn.gradient_steps` steps of the spine's pure train step on uniformly sampled minibatches.
Every `dqn.target_update_every` gradient steps the target network moves a fraction `dqn.target_tau`
of the way to the online one (Polyak averaging; tau 1 is a hard copy). The two networks form one
state (`QNetworks`) on the spine's several-network step: the loss reads the target from it.
Config keys: `experiments/configs/cartpole_dqn.py`.
"""

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from dljax.errors import DljaxError
from dljax.models import build_model
from dljax.optim import make_optimizer
from dljax.rl import experiment
from dljax.rl.agent import Agent, Setup
from dljax.rl.envs import Box
from dljax.steps import Update, make_train_step
from dljax.train_state import TrainState, init_model_state

BUFFER_FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "discount")


@flax.struct.dataclass
class QNetworks:
  """The Q-network trained by gradient steps and its slowly following target."""

  online: TrainState
  target: Any  # parameters only: Polyak-averaged, never trained by a gradient


@flax.struct.dataclass
class DQNState:
  q: QNetworks
  buffer: dict  # BUFFER_FIELDS -> [buffer_size, ...]
  env_steps: jax.Array  # transitions collected so far; also where the buffer writes next


def n_step_transitions(trajectory: dict, n: int, gamma: float) -> dict:
  """Folds a [T, N] rollout into one n-step transition per step.

  Step t sums the discounted rewards of steps t..last, where `last` is the earliest of t + n - 1,
  the step that ends t's episode and the rollout's last step; the transition then bootstraps from
  `last`'s `next_obs` (unless it terminated) with `discount` = gamma ** (last - t + 1), so that
  the target is `reward + discount * (1 - terminated) * Q(next_obs)`.
  """
  reward = trajectory["reward"]
  length = reward.shape[0]
  step = jnp.arange(length).reshape((length,) + (1,) * (reward.ndim - 1))
  ends = (trajectory["terminated"] | trajectory["truncated"]).at[-1].set(True)
  episode_end = jax.lax.cummin(jnp.where(ends, step, length - 1), axis=0, reverse=True)
  last = jnp.minimum(episode_end, step + n - 1)
  summed = sum(
    gamma**j * jnp.where(step + j <= last, jnp.roll(reward, -j, axis=0), 0.0)
    for j in range(min(n, length))
  )

  def at_last(x):
    return jnp.take_along_axis(x, last.reshape(last.shape + (1,) * (x.ndim - last.ndim)), axis=0)

  return {
    "obs": trajectory["obs"],
    "action": trajectory["action"],
    "reward": summed,
    "discount": gamma ** (last - step + 1).astype(reward.dtype),
    "next_obs": at_last(trajectory["next_obs"]),
    "terminated": at_last(trajectory["terminated"]),
  }


def double_dqn_target(reward, terminated, discount, online_next_q, target_next_q):
  """Bootstrapped Q targets: the online network picks the next action, the target network values
  it; only a termination ends the bootstrap (a time-limit truncation does not)."""
  next_action = jnp.argmax(online_next_q, axis=-1)
  next_q = jnp.take_along_axis(target_next_q, next_action[:, None], axis=-1)[:, 0]
  return reward + discount * (1.0 - terminated) * next_q


def double_dqn_loss(params, q: QNetworks, batch, rng, train):
  """Huber loss of the online Q-values against double-DQN targets from the target network."""
  del rng, train
  online = q.online
  q_taken = online.apply_fn(online.variables(params), batch["obs"])
  q_taken = jnp.take_along_axis(q_taken, batch["action"][:, None], axis=-1)[:, 0]
  target = double_dqn_target(
    batch["reward"],
    batch["terminated"],
    batch["discount"],
    online.apply_fn(online.variables(params), batch["next_obs"]),
    online.apply_fn({"params": q.target}, batch["next_obs"]),
  )
  loss = optax.huber_loss(q_taken, jax.lax.stop_gradient(target)).mean()
  return loss, ({"q": q_taken.mean()}, None)


def make_agent(config, s: Setup) -> Agent:
  cfg = config.dqn
  action_space = s.env.action_space
  if isinstance(action_space, Box):
    raise DljaxError(
      f"DQN needs discrete actions but {config.env} has continuous ones "
      f"({action_space}); train it with PPO instead "
      f"(experiments/configs/pendulum_ppo.py)"
    )
  model = build_model({"name": "rl_q_network", **config.model}, num_actions=action_space.n)
  tx = make_optimizer(config.optimizer, s.num_updates * cfg.gradient_steps)
  obs_shape = s.env.observation_space.shape
  exploration_steps = cfg.epsilon_fraction * s.num_updates * s.steps_per_update
  train_step = make_train_step([Update("online", double_dqn_loss)], jit=False)

  def epsilon(env_steps):
    progress = jnp.minimum(env_steps / exploration_steps, 1.0)
    return cfg.epsilon_start + progress * (cfg.epsilon_end - cfg.epsilon_start)

  def init(key):
    online = init_model_state(model, tx, key, jnp.zeros((1, *obs_shape)))
    size = (cfg.buffer_size,)
    buffer = {
      "obs": jnp.zeros(size + obs_shape),
      "action": jnp.zeros(size, jnp.int32),
      "reward": jnp.zeros(size),
      "next_obs": jnp.zeros(size + obs_shape),
      "terminated": jnp.zeros(size, bool),
      "discount": jnp.zeros(size),
    }
    return DQNState(QNetworks(online, online.params), buffer, jnp.int32(0))

  def draw_noise(key, shape):
    explore_key, action_key = jax.random.split(key)
    return {
      "explore": jax.random.uniform(explore_key, shape),
      "action": jax.random.randint(action_key, shape, 0, action_space.n),
    }

  def act(state, obs, noise):
    q = state.q.online.apply_fn(state.q.online.variables(), obs)
    explore = noise["explore"] < epsilon(state.env_steps)
    return jnp.where(explore, noise["action"], jnp.argmax(q, axis=-1)), {}

  def update(state, trajectory, key):
    n = s.steps_per_update
    slots = (state.env_steps + jnp.arange(n)) % cfg.buffer_size
    transitions = n_step_transitions(trajectory, cfg.n_step, cfg.gamma)
    buffer = {
      k: state.buffer[k].at[slots].set(transitions[k].reshape(n, *state.buffer[k].shape[1:]))
      for k in BUFFER_FIELDS
    }
    env_steps = state.env_steps + n

    def gradient_step(q, batch):
      q, metrics = train_step(q, batch)
      tau = jnp.where(q.online.step % cfg.target_update_every == 0, cfg.target_tau, 0.0)
      return q.replace(target=optax.incremental_update(q.online.params, q.target, tau)), metrics

    indices = jax.random.randint(
      key, (cfg.gradient_steps, cfg.batch_size), 0, jnp.minimum(env_steps, cfg.buffer_size)
    )
    minibatches = jax.tree.map(lambda x: x[indices], buffer)
    learned, metrics = jax.lax.scan(gradient_step, state.q, minibatches)
    # Under vmap a `cond` runs both branches anyway, so warm-up updates are computed and dropped.
    ready = env_steps >= cfg.learning_starts
    q = jax.tree.map(lambda new, old: jnp.where(ready, new, old), learned, state.q)
    metrics = {**jax.tree.map(jnp.mean, metrics), "epsilon": epsilon(state.env_steps)}
    return DQNState(q, buffer, env_steps), metrics

  def greedy(state, obs):
    return jnp.argmax(state.q.online.apply_fn(state.q.online.variables(), obs), axis=-1)

  return Agent(
    init=init,
    draw_noise=draw_noise,
    act=act,
    update=update,
    greedy=greedy,
    identity={"model": config.model.to_dict(), "buffer_size": cfg.buffer_size},
  )


def build_experiment(config, mesh):
  return experiment.build_experiment(config, mesh, make_agent)
