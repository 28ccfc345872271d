"""Proximal policy optimisation (PPO, clipped objective) for discrete and continuous actions.

Each update collects `rollout_steps` steps of `num_envs` envs, computes GAE advantages (truncated
episodes bootstrap from the value of their last observation; terminated ones do not), then runs
`num_epochs` epochs of `num_minibatches` minibatch steps of the spine's pure train step. The
policy is categorical for `Discrete` actions and a diagonal Gaussian with a state-independent
log-std for `Box` actions. Config keys: `dljax.rl.config.ppo_config`.
"""

import math

import jax
import jax.numpy as jnp

from dljax.errors import DljaxError
from dljax.models import build_model
from dljax.optim import make_optimizer
from dljax.rl import experiment
from dljax.rl.agent import Agent, Setup
from dljax.rl.envs import Box
from dljax.steps import make_train_step
from dljax.train_state import init_model_state


class Categorical:
  """The policy over `Discrete` actions; `policy` is the logits."""

  @staticmethod
  def noise(key, shape, action_space):
    return jax.random.gumbel(key, (*shape, action_space.n))

  @staticmethod
  def sample(logits, gumbel):  # the Gumbel-max trick: noise drawn ahead, outside the rollout
    return jnp.argmax(logits + gumbel, axis=-1)

  @staticmethod
  def mode(logits):
    return jnp.argmax(logits, axis=-1)

  @staticmethod
  def log_prob(logits, action):
    log_p = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(log_p, action[..., None].astype(jnp.int32), axis=-1)[..., 0]

  @staticmethod
  def entropy(logits):
    log_p = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


class Gaussian:
  """The policy over `Box` actions; `policy` is `(mean, log_std)`."""

  @staticmethod
  def noise(key, shape, action_space):
    return jax.random.normal(key, (*shape, *action_space.shape))

  @staticmethod
  def sample(policy, normal):
    mean, log_std = policy
    return mean + jnp.exp(log_std) * normal

  @staticmethod
  def mode(policy):
    return policy[0]

  @staticmethod
  def log_prob(policy, action):
    mean, log_std = policy
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi), axis=-1)

  @staticmethod
  def entropy(policy):
    return jnp.sum(policy[1] + 0.5 * math.log(2 * math.pi * math.e), axis=-1)


def gae(reward, value, next_value, terminated, done, gamma: float, lam: float):
  """Generalised advantage estimates and value targets for [T, ...] arrays.

  `next_value` is the value of the observation each step led to (before an auto-reset), so a
  truncated episode bootstraps from its last state; `terminated` steps have no future value and
  `done` (terminated or truncated) steps end the backward recursion.
  """
  delta = reward + gamma * (1.0 - terminated) * next_value - value
  decay = gamma * lam * (1.0 - done)

  def backward(advantage, xs):
    delta_t, decay_t = xs
    advantage = delta_t + decay_t * advantage
    return advantage, advantage

  _, advantage = jax.lax.scan(backward, jnp.zeros_like(delta[0]), (delta, decay), reverse=True)
  return advantage, advantage + value


def make_loss(dist, cfg):
  def ppo_loss(params, state, batch, rng, train):
    del rng, train
    policy, value = state.apply_fn(state.variables(params), batch["obs"])
    log_prob = dist.log_prob(policy, batch["action"])
    ratio = jnp.exp(log_prob - batch["log_prob"])
    advantage = batch["advantage"]
    advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    clipped_ratio = jnp.clip(ratio, 1.0 - cfg.clip_eps, 1.0 + cfg.clip_eps)
    actor_loss = -jnp.minimum(ratio * advantage, clipped_ratio * advantage).mean()
    clipped_value = batch["value"] + jnp.clip(value - batch["value"], -cfg.clip_eps, cfg.clip_eps)
    value_loss = (
      0.5
      * jnp.maximum((value - batch["target"]) ** 2, (clipped_value - batch["target"]) ** 2).mean()
    )
    entropy = dist.entropy(policy).mean()
    loss = actor_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
    return loss, ({"actor_loss": actor_loss, "value_loss": value_loss, "entropy": entropy}, None)

  return ppo_loss


def make_agent(config, s: Setup) -> Agent:
  cfg = config.ppo
  batch_size = s.num_envs * s.rollout_steps
  if batch_size % cfg.num_minibatches:
    raise DljaxError(
      f"num_envs * rollout_steps = {s.num_envs} * {s.rollout_steps} = {batch_size} "
      f"is not divisible by ppo.num_minibatches={cfg.num_minibatches}; change one "
      f"of them"
    )
  action_space = s.env.action_space
  continuous = isinstance(action_space, Box)
  dist = Gaussian if continuous else Categorical
  model = build_model(
    {"name": "rl_actor_critic", **config.model},
    continuous=continuous,
    action_dim=action_space.shape[0] if continuous else action_space.n,
  )
  num_steps = cfg.num_epochs * cfg.num_minibatches
  tx = make_optimizer(config.optimizer, s.num_updates * num_steps)
  train_step = make_train_step(make_loss(dist, cfg), jit=False)

  def init(key):
    return init_model_state(model, tx, key, jnp.zeros((1, *s.env.observation_space.shape)))

  def act(state, obs, noise):
    policy, value = state.apply_fn(state.variables(), obs)
    action = dist.sample(policy, noise)
    return action, {"log_prob": dist.log_prob(policy, action), "value": value}

  def update(state, trajectory, key):
    _, next_value = state.apply_fn(state.variables(), trajectory["next_obs"])
    advantage, target = gae(
      cfg.reward_scale * trajectory["reward"],
      trajectory["value"],
      next_value,
      trajectory["terminated"].astype(jnp.float32),
      (trajectory["terminated"] | trajectory["truncated"]).astype(jnp.float32),
      cfg.gamma,
      cfg.gae_lambda,
    )
    batch = {
      "obs": trajectory["obs"],
      "action": trajectory["action"],
      "log_prob": trajectory["log_prob"],
      "value": trajectory["value"],
      "advantage": advantage,
      "target": target,
    }
    # All epochs' shuffles in one sort, all minibatches in one gather per array.
    order = jnp.argsort(jax.random.uniform(key, (cfg.num_epochs, batch_size)), axis=-1)
    order = order.reshape(num_steps, batch_size // cfg.num_minibatches)
    minibatches = jax.tree.map(lambda x: x.reshape(batch_size, *x.shape[2:])[order], batch)
    state, metrics = jax.lax.scan(train_step, state, minibatches)
    return state, jax.tree.map(jnp.mean, metrics)

  def greedy(state, obs):
    return dist.mode(state.apply_fn(state.variables(), obs)[0])

  return Agent(
    init=init,
    draw_noise=lambda key, shape: dist.noise(key, shape, action_space),
    act=act,
    update=update,
    greedy=greedy,
    identity={"model": config.model.to_dict()},
  )


def build_experiment(config, mesh):
  return experiment.build_experiment(config, mesh, make_agent)
