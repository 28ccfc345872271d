"""PPO with a diagonal Gaussian policy on the JAX-native Pendulum-v1, 8 seeds in one vmapped run.

  python -m experiments.train --config experiments/configs/pendulum_ppo.py --workdir runs/pendulum_ppo

Pendulum episodes only truncate (200 steps), so value targets bootstrap from the last state;
rewards are scaled by 0.1 to keep value targets small, and a short horizon (gamma 0.95) suits
the task. Variant `smoke` runs in seconds (tests).
Its measured returns and times: README's results table (`python -m benchmarks.reproduce`).
"""

from dljax.config import apply_variant
from dljax.rl.config import ppo_config, rl_config


def get_config(variant: str = ""):
  c = rl_config()
  c.task = "ppo"
  c.env = "Pendulum-v1"
  c.num_seeds = 8
  c.num_envs = 16
  c.rollout_steps = 128
  c.total_env_steps = 1_000_000
  c.chunk_updates = 61  # 8 chunks of the 488 updates
  c.ppo = ppo_config()
  c.ppo.update(gamma=0.95, ent_coef=0.0, num_epochs=10, num_minibatches=8, reward_scale=0.1)
  c.optimizer.learning_rate = 1e-3
  return apply_variant(c, variant, {"smoke": smoke})


def smoke(c):
  c.num_seeds = 2
  c.num_envs = 4
  c.rollout_steps = 16
  c.total_env_steps = 4 * 16 * 6
  c.chunk_updates = 3
  c.eval_episodes = 2
  c.ppo.num_epochs = 2
  c.ppo.num_minibatches = 2
