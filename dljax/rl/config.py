"""The RL configs' defaults: the fields every RL config shares, PPO's block and DQN's block.

Config files import this module only, so it imports nothing heavy (no jax, no loop, no orbax):
loading a config stays cheap, and a config is readable without the library's runtime.
"""

import ml_collections

from dljax.config import base_config


def rl_config() -> ml_collections.ConfigDict:
  """Defaults shared by the RL configs; the loop's `num_steps` counts chunks (0: derived)."""
  c = base_config()
  c.env = "CartPole-v1"  # a dljax.rl.envs name, or gym:<gymnasium id> (host rollouts, one seed)
  c.num_seeds = 8  # independent runs trained together (vmapped)
  c.num_envs = 4  # parallel envs per seed
  c.rollout_steps = 128  # env steps per env between two learning phases
  c.total_env_steps = 500_000  # per seed; rounded down to whole updates, then up to whole chunks
  c.chunk_updates = 50  # updates per jitted call of the loop
  c.eval_episodes = 10  # per seed, greedy / mean action
  # One XLA:CPU device. 2 (the seeds split over them) work and run 1.5-1.8x faster on an idle
  # 2-core machine (no faster on a busy one), but round differently from one: the configs'
  # figures are one device's (cartpole_dqn on 2 devices: mean 469.3, one seed 254, not 500).
  c.cpu_devices = 1
  c.log_every_steps = 1  # in chunks: every chunk's metrics are logged
  c.checkpoint_every_steps = 10  # in chunks
  # The agent's MLP (rl_actor_critic or rl_q_network in dljax.models): widths, activation.
  c.model = ml_collections.ConfigDict({"hidden": (64, 64), "activation": "tanh"})
  c.optimizer.name = "adam"
  c.optimizer.schedule = "linear"  # annealed to 0 over the run, as PureJaxRL's PPO
  c.optimizer.grad_clip_norm = 0.5
  return c


def ppo_config() -> ml_collections.ConfigDict:
  """PureJaxRL's PPO settings (the `ppo` block of a config)."""
  c = ml_collections.ConfigDict()
  c.gamma = 0.99  # discount
  c.gae_lambda = 0.95  # GAE's lambda (1: Monte Carlo returns, 0: one-step TD targets)
  c.clip_eps = 0.2  # clipping range of the policy ratio and of the value's change
  c.ent_coef = 0.01  # weight of the entropy bonus
  c.vf_coef = 0.5  # weight of the value loss
  c.num_epochs = 4  # passes over each update's rollout
  c.num_minibatches = 4  # per epoch; they split the num_envs * rollout_steps transitions
  c.reward_scale = 1.0  # rewards are multiplied by it before GAE
  return c


def dqn_config() -> ml_collections.ConfigDict:
  """Double DQN's settings (the `dqn` block of a config), tuned on CartPole-v1."""
  # After rl-baselines3-zoo's CartPole DQN (batch 64, 1e5 buffer, 1000 warm-up steps, short
  # exploration) with a Polyak target: hard refreshes every 64-128 gradient steps let Q overshoot
  # its bound of 100, as did lr 1e-3 once (tau 0.005); lr 7e-4 gave the best worst seed.
  # 5-step returns: with 1-step ones each target refresh carries value one step further, so Q
  # needed ~150k env steps to see the cart run off the track, and 1-2 seeds in 8 still failed at
  # 3e5 steps (mean 430). With 5 steps, 94 of 96 seeds (3 seed sets) end at 484-500 (mean 491.4);
  # about 1 seed in 48 collapses late, after reaching 500. Minibatches of 128 (72 seeds: mean
  # 488.6, 1.4x the time), 64 gradient steps, tau 0.002, 2e5 steps (72 seeds: 484.3) and gamma
  # 0.995 (Q diverged) were no better.
  c = ml_collections.ConfigDict()
  c.gamma = 0.99  # discount
  c.n_step = 5  # rewards summed into each transition before it bootstraps (dljax.rl.dqn)
  c.buffer_size = 100_000  # transitions the replay buffer holds per seed (oldest overwritten)
  c.batch_size = 64  # transitions per gradient step, sampled uniformly from the buffer
  c.gradient_steps = 128  # gradient steps per update
  c.learning_starts = 1_000  # env steps collected per seed before the first gradient step
  c.target_update_every = 1  # gradient steps between two moves of the target network
  c.target_tau = 0.005  # each move's fraction of the way to the online network (1: hard copy)
  c.epsilon_start = 1.0  # exploration rate at the start
  c.epsilon_end = 0.04  # exploration rate after the annealing, and from then on
  c.epsilon_fraction = 0.1  # fraction of the run's env steps over which epsilon anneals linearly
  return c
