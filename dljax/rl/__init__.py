"""Reinforcement learning for dljax: environments (`dljax.rl.envs`) and agents.

Agents: `ppo`, `dqn` (each builds an `agent.Agent` and hands it to `experiment.build_experiment`).
Drivers: `rollout` and `chunk` (jitted, on the JAX envs), `gym_driver` (host loop, gymnasium);
`runner` (the checkpointed state), `evaluation`, and `config` (the configs' defaults).
"""
