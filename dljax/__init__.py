"""dljax: deep-learning chapters as fast, tested JAX/Flax code on one training spine.

The spine: a `TrainState` pytree (`dljax.train_state`), one step factory that turns a task's loss
into a jitted `(state, batch) -> (state, metrics)` (`dljax.steps`), optimizers from config
(`dljax.optim`), and one loop driver with logging, checkpoints and resume (`dljax.loop`). Every
chapter (vision, sequence, RL) is a task plugged into that spine (`dljax.tasks`).
"""

__version__ = "0.1.0"
