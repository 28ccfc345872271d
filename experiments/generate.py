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
[0, 1] as a .npy beside it. The checkpoint's meta names the task whose `sample_images` draws them;
a diffusion or flow-matching run samples with its own sampler and steps unless --steps and
--sampler say otherwise.
"""

import math
import os

from absl import flags, logging

from dljax import cli
from dljax.errors import DljaxError

_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory written by experiments.train.")
_PROMPT = flags.DEFINE_string("prompt", "\n", "Text to continue.")
_NUM_TOKENS = flags.DEFINE_integer("num_tokens", 500, "Characters to generate.")
_TEMPERATURE = flags.DEFINE_float("temperature", 0.8, "Sampling temperature (0: greedy).")
_TOP_K = flags.DEFINE_integer("top_k", 200, "Keep the k most likely characters (0: all).")
_TOP_P = flags.DEFINE_float("top_p", 0.0, "Nucleus sampling mass (0: off).")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")
_STEP = flags.DEFINE_integer("step", 0, "Checkpoint step to use (0: the newest).")
_NUM = flags.DEFINE_integer("num", None, "Images to sample from an image model (default 64).")
_NPY = flags.DEFINE_bool("npy", False, "Also save the images as a .npy array beside the PNG.")
_OUT = flags.DEFINE_string("out", None, "PNG file for the images (default WORKDIR/generated.png).")
_STEPS = flags.DEFINE_integer(
  "steps", None, "Sampler steps of a diffusion or flow-matching run (default: the run's)."
)
_SAMPLER = flags.DEFINE_string(
  "sampler", None, "Sampler of a diffusion (ddim, ddpm) or flow-matching (euler, heun) run."
)
flags.mark_flags_as_required(["workdir"])
ITERATIVE_SAMPLERS = ("diffusion", "flow_matching")  # the tasks that take --steps and --sampler
MAX_IMAGES = 10_000  # 10,000 MNIST-sized images take 31 MB as float32; 1e8 crashed the host


def write_images(checkpointer, step: int, meta: dict):
  """Samples an image model's checkpoint into a PNG grid (and a .npy with --npy)."""
  import jax
  import numpy as np

  from dljax.image_grid import save_grid
  from dljax.tasks import task_module

  num = 64 if _NUM.value is None else _NUM.value
  options = {"steps": _STEPS.value, "sampler": _SAMPLER.value}
  if meta["sampler"] not in ITERATIVE_SAMPLERS:
    given = [f"--{name}" for name, value in options.items() if value is not None]
    if given:
      raise DljaxError(
        f"{' and '.join(given)} apply to diffusion and flow-matching runs; {_WORKDIR.value} holds "
        f"a {meta['sampler']} run, which samples in one pass: drop them"
      )
    options = {}
  images = task_module(meta["sampler"]).sample_images(
    checkpointer.restore_raw(step), meta, jax.random.PRNGKey(_SEED.value), num, **options
  )
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
  from dljax.checkpoint import Checkpointer
  from dljax.data.text import CharVocab
  from dljax.models import build_model
  from dljax.tasks.language_model import sample_text

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
  if "sampler" in meta:
    write_images(checkpointer, step, meta)
    return
  if _NUM.value is not None:
    raise DljaxError(
      f"--num asks for images, but {_WORKDIR.value} holds a "
      f"{meta.get('identity', {}).get('task')} run, not an image model; drop --num "
      f"(text: --num_tokens) or point --workdir at a VAE or GAN run"
    )
  if meta.get("identity", {}).get("task") != "language_model":
    raise DljaxError(
      f"the checkpoint in {directory} is not a language model "
      f"({meta.get('identity')}); point --workdir at a shakespeare_* run"
    )
  model = build_model(meta["model"])
  params = checkpointer.restore_raw(step)["params"]
  print(
    sample_text(
      model,
      params,
      CharVocab.from_json(meta["vocab"]),
      _PROMPT.value,
      _NUM_TOKENS.value,
      _SEED.value,
      _TEMPERATURE.value,
      _TOP_K.value,
      _TOP_P.value,
    )
  )


if __name__ == "__main__":
  cli.run_main(main)
