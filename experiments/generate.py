"""Samples text from a trained language model, using nothing but its run directory.

  python -m experiments.generate --workdir DIR --prompt "ROMEO:" --num_tokens 500 \
      [--temperature T --top_k K --top_p P --seed S --step N]

The checkpoint holds the vocabulary and the model's constructor arguments; the whole sampling
loop is one jitted lax.scan (KV cache for GPT, recurrent carry for LSTM/GRU). A GPT slides its
context window past block_size, as nanoGPT does.
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
flags.mark_flags_as_required(["workdir"])


def check_generation_options():
  """Refuses options that would sample nothing sensible (NaN logits, an empty filter)."""
  if not (math.isfinite(_TEMPERATURE.value) and _TEMPERATURE.value >= 0):
    raise DljaxError(f"--temperature must be a finite number >= 0 (0: greedy), got "
                     f"{_TEMPERATURE.value}")
  if _TOP_K.value < 0:
    raise DljaxError(f"--top_k must be >= 0 (0: every character), got {_TOP_K.value}")
  if not 0 <= _TOP_P.value <= 1:
    raise DljaxError(f"--top_p must be in [0, 1] (0: off), got {_TOP_P.value}")
  if _NUM_TOKENS.value < 1:
    raise DljaxError(f"--num_tokens must be at least 1, got {_NUM_TOKENS.value}")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  check_generation_options()  # before the slow imports
  from dljax.checkpoint import Checkpointer
  from dljax.data.text import CharVocab
  from dljax.tasks.language_model import build_from_spec, sample_text

  directory = os.path.join(_WORKDIR.value, "checkpoints")
  checkpointer = Checkpointer(directory, {}) if os.path.isdir(directory) else None
  steps = checkpointer.all_steps() if checkpointer else []
  if not steps:
    raise DljaxError(f"no checkpoint in {directory}; train a language model there first, e.g. "
                     f"python -m experiments.train --config "
                     f"experiments/configs/shakespeare_gpt.py:cpu --workdir {_WORKDIR.value}")
  step = _STEP.value or steps[-1]
  if step not in steps:
    raise DljaxError(f"there is no checkpoint for step {step} in {directory}; its steps are "
                     f"{', '.join(map(str, steps))} (--step=0: the newest)")
  meta = checkpointer.read_meta(step)
  if meta.get("identity", {}).get("task") != "language_model":
    raise DljaxError(f"the checkpoint in {directory} is not a language model "
                     f"({meta.get('identity')}); point --workdir at a shakespeare_* run")
  model = build_from_spec(meta["model"])
  params = checkpointer.restore_raw(step)["params"]
  print(sample_text(model, params, CharVocab.from_json(meta["vocab"]), _PROMPT.value,
                    _NUM_TOKENS.value, _SEED.value, _TEMPERATURE.value, _TOP_K.value, _TOP_P.value))


if __name__ == "__main__":
  cli.run_main(main)
