"""Task registry: a config's `task` names the module that turns it into an `Experiment`; `train`
runs it through the loop with the `LoopOptions` the config asks for.

Modules are imported on demand, so a vision run never imports the RL or text code.
"""

import importlib

from dljax.errors import unknown_name

TASKS = {
  "basics": "dljax.tasks.basics",
  "basics_compare": "dljax.tasks.basics_compare",
  "classification": "dljax.tasks.classification",
  "language_model": "dljax.tasks.language_model",
  "ppo": "dljax.rl.ppo",
  "dqn": "dljax.rl.dqn",
  "gan": "dljax.tasks.gan",
  "vae": "dljax.tasks.vae",
  "diffusion": "dljax.tasks.diffusion",
  "flow_matching": "dljax.tasks.flow_matching",
}


def task_module(name: str):
  """The module of the task registered as `name` (imported now)."""
  if name not in TASKS:
    raise unknown_name("task", name, TASKS)
  return importlib.import_module(TASKS[name])


def build_experiment(config, mesh):
  return task_module(config.task).build_experiment(config, mesh)


def loop_options(config):
  """The `LoopOptions` a config asks for: the one place that reads the loop's config fields."""
  from dljax.experiment import LoopOptions

  return LoopOptions(
    log_every_steps=config.log_every_steps,
    eval_every_steps=config.eval_every_steps,
    checkpoint_every_steps=config.checkpoint_every_steps,
    keep_checkpoints=config.keep_checkpoints,
    quiet=config.quiet,
    watchdog_timeout_s=config.watchdog_timeout_s,
    config=config.to_dict(),
  )


def train(config, workdir: str, start_time: float | None = None) -> dict:
  """Builds the experiment `config` describes on a data mesh and runs it; returns the summary."""
  import jax

  from dljax import loop, parallel

  options = loop_options(config)  # its checks are cheap: before any data is loaded
  mesh = parallel.make_data_mesh(config.num_devices)
  with jax.set_mesh(mesh):
    return loop.run(build_experiment(config, mesh), options, workdir, start_time)
