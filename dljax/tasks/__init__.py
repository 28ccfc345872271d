"""Task registry: a config's `task` names the module that turns it into an `Experiment`; `train`
runs it through the loop with the `LoopOptions` the config asks for.

Modules are imported on demand, so a vision run never imports the RL or text code.

A generative task's module also has the one sampling hook `experiments.generate` calls,

  sample(state_tree, meta, options: SampleOptions) -> images [num, H, W, C] in [0, 1] | text,

given a checkpoint restored as a plain tree (`Checkpointer.restore_raw`), the checkpoint's `meta`
and the command line's options; it reads the options it uses and refuses, in one line
(`DljaxError`), those that make no sense for it.
"""

import dataclasses
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


@dataclasses.dataclass(frozen=True)
class SampleOptions:
  """What `experiments.generate` parses for a task's `sample` hook (its flags of the same names).

  A new sampler option (say a diffusion sampler's number of steps, `steps`) is one field here and
  the flag of the same name in experiments/generate.py; the tasks that do not use it ignore it.
  """

  seed: int = 0  # every random draw of the sampler derives from it
  num: int | None = None  # images to sample; None: not asked (an image task draws NUM_IMAGES)
  prompt: str = "\n"  # text: what the sample continues
  num_tokens: int = 500  # text: characters to sample
  temperature: float = 0.8  # text: 0 greedy, < 1 sharper, > 1 flatter
  top_k: int = 200  # text: sample among the k likeliest characters only (0: all)
  top_p: float = 0.0  # text: nucleus sampling mass (0: off)
  steps: int | None = None  # iterative image samplers: steps (None: the run's own)
  sampler: str | None = None  # iterative image samplers: which one (None: the run's own)

  NUM_IMAGES = 64  # images an image task draws when `num` is not given

  @property
  def num_images(self) -> int:
    return self.NUM_IMAGES if self.num is None else self.num


def task_module(name: str):
  """The module of the task registered as `name` (imported now)."""
  if name not in TASKS:
    raise unknown_name("task", name, TASKS)
  return importlib.import_module(TASKS[name])


def build_experiment(config, mesh):
  """The `Experiment` of `config`'s task, its checkpoint identity led by the task's name: the one
  place that writes it, so checkpoints of two tasks never pass for each other."""
  import dataclasses

  experiment = task_module(config.task).build_experiment(config, mesh)
  if "task" in experiment.identity:
    raise ValueError(
      f"task {config.task!r} put 'task' in its Experiment.identity; build_experiment adds it"
    )
  return dataclasses.replace(experiment, identity={"task": config.task, **experiment.identity})


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
