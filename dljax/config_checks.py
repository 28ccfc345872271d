"""Range checks for the config fields every experiment shares (`dljax.config.base_config`).

The entry script runs them before anything heavy, so that a bad value ends in one line before
data is loaded or WORKDIR touched. Fields of one task or module are checked where they are read.
"""

from dljax.errors import bad_value

# field: (smallest allowed value, what it must be)
_AT_LEAST = {
  "num_steps": (0, "at least 0 (0: derived by the task)"),
  "steps_per_call": (1, "at least 1"),
  "log_every_steps": (1, "at least 1"),
  "eval_every_steps": (0, "at least 0 (0: evaluate only at the end)"),
  "checkpoint_every_steps": (0, "at least 0 (0: checkpoint only at the end)"),
  "keep_checkpoints": (1, "at least 1"),
  "num_devices": (0, "at least 0 (0: all devices)"),
  "cpu_devices": (0, "at least 0 (0: one per core, at most 8)"),
}


def check_shared_config(config):
  """Raises a one-line `DljaxError` for the first shared field out of its range."""
  check_ranges({name: config[name] for name in _AT_LEAST})


def check_ranges(values: dict):
  """The same check for `values` ({shared field name: value}), e.g. the loop's own options."""
  for name, value in values.items():
    low, rule = _AT_LEAST[name]
    if value < low:
      raise bad_value(name, value, rule)
