"""Double DQN on the JAX-native CartPole-v1: 8 seeds trained together in one vmapped run.

  python -m experiments.train --config experiments/configs/cartpole_dqn.py --workdir runs/cartpole_dqn

Each update steps 16 envs 48 times into a 100,000-transition replay buffer of 5-step transitions
per seed, then takes 128 gradient steps on minibatches of 64, each moving the target network 0.5%
of the way to the online one; the learning rate anneals to 0, which keeps the final greedy policy
from drifting. Variant `smoke` runs in seconds (tests).
Its measured returns and times: README's results table (`python -m benchmarks.reproduce`).
"""

from dljax.config import apply_variant
from dljax.rl.config import dqn_config, rl_config


def get_config(variant: str = ""):
  c = rl_config()
  c.task = "dqn"
  c.env = "CartPole-v1"
  c.num_seeds = 8
  # Many envs make collection cheap (a rollout step costs the same for 4 or 16), so the budget
  # buys more data per gradient step.
  c.num_envs = 16
  c.rollout_steps = 48
  c.total_env_steps = 300_000
  c.chunk_updates = 65
  c.model.hidden = (120, 84)
  c.model.activation = "relu"
  c.dqn = dqn_config()  # its values and how they were tuned: dljax.rl.config.dqn_config
  c.optimizer.learning_rate = 7e-4
  c.optimizer.grad_clip_norm = 10.0
  return apply_variant(c, variant, {"smoke": smoke})


def smoke(c):
  c.num_seeds = 2
  c.num_envs = 4
  c.rollout_steps = 4
  c.total_env_steps = 4 * 4 * 12
  c.chunk_updates = 3
  c.eval_episodes = 2
  c.checkpoint_every_steps = 2
  c.dqn.buffer_size = 64
  c.dqn.batch_size = 8
  c.dqn.learning_starts = 32
  c.dqn.gradient_steps = 2
