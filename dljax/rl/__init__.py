"""Reinforcement-learning chapter of dljax: environments (``dljax.rl.envs``) and agents."""
