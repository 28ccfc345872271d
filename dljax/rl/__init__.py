"""Reinforcement learning for dljax: environments (`dljax.rl.envs`) and agents."""
