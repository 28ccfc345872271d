"""Samples from a trained model, using nothing but its run directory.

Text from a language model:

  python -m experiments.generate --workdir DIR --prompt "ROMEO:" --num_tokens 500 \
      [--temperature T --top_k K --top_p P --seed S --step N]

The checkpoint holds the vocabulary and the model's constructor arguments; the whole sampling
loop is one jitted lax.scan (KV cache for GPT, recurrent carry for LSTM/GRU). A GPT slides its
context window past block_size, as nanoGPT does.

Images from a generative image model (VAE, GAN, diffusion, flow matching):

  python -m experiments.generate --workdir DIR --num 64 [--npy] [--out FILE.png --seed S --step N]
      [--steps K --sampler NAME]  (diffusion: ddim, ddpm; flow matching: euler, heun)

writes a PNG grid (default DIR/generated.png) and, with --npy, the images [num, H, W, C] in
[0, 1] as a .npy beside it.

Either way one hook draws the samples: the module of the task named in the checkpoint's identity
has `sample(state_tree, meta, options) -> images | text` (dljax.tasks), given the checkpoint as a
plain tree, its meta and the flags below as a `dljax.tasks.SampleOptions`. A new sampler option
(e.g. a diffusion sampler's --steps) is one flag here and the `SampleOptions` field of its name;
options only some samplers read (--steps, --sampler) are named in those tasks' `SAMPLER_OPTIONS`
and refused for the others.
"""

import math
import os
from dataclasses import fields

from absl import flags, logging

from dljax import cli
from dljax.errors import DljaxError
from dljax.tasks import TASKS, SampleOptions, task_module

_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory written by experiments.train.")
_PROMPT = flags.DEFINE_string("prompt", "\n", "Text to continue.")
_NUM_TOKENS = flags.DEFINE_integer("num_tokens", 500, "Characters to generate.")
_TEMPERATURE = flags.DEFINE_float("temperature", 0.8, "Sampling temperature (0: greedy).")
_TOP_K = flags.DEFINE_integer("top_k", 200, "Keep the k most likely characters (0: all).")
_TOP_P = flags.DEFINE_float("top_p", 0.0, "Nucleus sampling mass (0: off).")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")
_STEP = flags.DEFINE_integer("step", 0, "Checkpoint step to use (0: the newest).")
_NUM = flags.DEFINE_integer(
  "num", None, f"Images to sample from an image model (default {SampleOptions.NUM_IMAGES})."
)
_NPY = flags.DEFINE_bool("npy", False, "Also save the images as a .npy array beside the PNG.")
_OUT = flags.DEFINE_string("out", None, "PNG file for the images (default WORKDIR/generated.png).")
_STEPS = flags.DEFINE_integer(
  "steps", None, "Sampler steps of a diffusion or flow-matching run (default: the run's)."
)
_SAMPLER = flags.DEFINE_string(
  "sampler", None, "Sampler of a diffusion (ddim, ddpm) or flow-matching (euler, heun) run."
)
flags.mark_flags_as_required(["workdir"])
MAX_IMAGES = 10_000  # 10,000 MNIST-sized images take 31 MB as float32; 1e8 crashed the host


def write_images(images, num: int):
  """Writes sampled images as a PNG grid (and a .npy with --npy)."""
  import numpy as np

  from dljax.tasks.image_grid import save_grid

  out = _OUT.value or os.path.join(_WORKDIR.value, "generated.png")
  save_grid(images, out)
  print(f"wrote {num} images to {out}")
  if _NPY.value:
    np.save(os.path.splitext(out)[0] + ".npy", images)
    print(
      f"wrote the array [{', '.join(map(str, images.shape))}] to {os.path.splitext(out)[0]}.npy"
    )


def check_generation_options():
  """Refuses options that would sample nothing sensible (NaN logits, an empty filter) or that
  could not be written (--out), before anything is loaded."""
  if not (math.isfinite(_TEMPERATURE.value) and _TEMPERATURE.value >= 0):
    raise DljaxError(
      f"--temperature must be a finite number >= 0 (0: greedy), got {_TEMPERATURE.value}"
    )
  if _TOP_K.value < 0:
    raise DljaxError(f"--top_k must be >= 0 (0: every character), got {_TOP_K.value}")
  if not 0 <= _TOP_P.value <= 1:
    raise DljaxError(f"--top_p must be in [0, 1] (0: off), got {_TOP_P.value}")
  if _NUM_TOKENS.value < 1:
    raise DljaxError(f"--num_tokens must be at least 1, got {_NUM_TOKENS.value}")
  if _STEPS.value is not None and _STEPS.value < 1:
    raise DljaxError(f"--steps must be at least 1 (sampler steps), got {_STEPS.value}")
  if _NUM.value is not None and _NUM.value < 1:
    raise DljaxError(f"--num must be at least 1 (images to sample), got {_NUM.value}")
  if _NUM.value is not None and _NUM.value > MAX_IMAGES:
    raise DljaxError(
      f"--num must be at most {MAX_IMAGES} (one grid in memory), got {_NUM.value}; sample more "
      f"in several runs with different --seed"
    )
  if _OUT.value is not None:
    if not _OUT.value.endswith(".png"):
      raise DljaxError(f"--out must name a .png file, got {_OUT.value!r}")
    if not os.path.isdir(os.path.dirname(os.path.abspath(_OUT.value))):
      raise DljaxError(
        f"--out {_OUT.value}: its directory does not exist; create it or pick another path"
      )


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  check_generation_options()  # before the slow imports
  from dljax.checkpoint import Checkpointer, install

  install()
  directory = os.path.join(_WORKDIR.value, "checkpoints")
  checkpointer = Checkpointer(directory, {}) if os.path.isdir(directory) else None
  steps = checkpointer.committed_steps() if checkpointer else []
  if not steps:
    raise DljaxError(
      f"no checkpoint in {directory}; train a model there first, e.g. "
      f"python -m experiments.train --config "
      f"experiments/configs/shakespeare_gpt.py:cpu --workdir {_WORKDIR.value}"
    )
  step = _STEP.value or steps[-1]
  if step not in steps:
    raise DljaxError(
      f"there is no checkpoint for step {step} in {directory}; its steps are "
      f"{', '.join(map(str, steps))} (--step=0: the newest)"
    )
  meta = checkpointer.read_meta(step)
  task = meta.get("identity", {}).get("task")
  module = task_module(task) if task in TASKS else None
  if not hasattr(module, "sample"):
    raise DljaxError(
      f"the checkpoint in {directory} is a {task} run, which samples nothing; point --workdir at "
      f"a run of a task that does (language model, VAE, GAN)"
    )
  options = SampleOptions(**{f.name: flags.FLAGS[f.name].value for f in fields(SampleOptions)})
  # Options only some samplers read (a module's SAMPLER_OPTIONS) are refused where they would be
  # silently ignored.
  ignored = [
    f"--{name}"
    for name in ("steps", "sampler")
    if getattr(options, name) is not None and name not in getattr(module, "SAMPLER_OPTIONS", ())
  ]
  if ignored:
    raise DljaxError(
      f"{' and '.join(ignored)} apply to diffusion and flow-matching runs; {_WORKDIR.value} holds "
      f"a {task} run, which samples in one pass: drop them"
    )
  sample = module.sample(checkpointer.restore_raw(step), meta, options)
  if isinstance(sample, str):
    print(sample)
  else:
    write_images(sample, options.num_images)


if __name__ == "__main__":
  cli.run_main(main)
