"""User-facing errors: each names the problem and the fix, and entry scripts print it without a traceback."""


class DljaxError(ValueError):
  """A problem with the user's input or environment that the user can fix.

  Entry scripts catch it, print the message and exit with status 2; anything else is a bug and
  keeps its traceback. It is a ValueError so that library callers can treat it as bad input.
  """


class NonFiniteLossError(DljaxError):
  """Training produced a NaN or inf loss; the last good checkpoint is kept."""


class CheckpointMismatchError(DljaxError):
  """WORKDIR holds checkpoints that belong to another experiment."""


class UnreadableCheckpointError(DljaxError):
  """A checkpoint on disk cannot be read back (corrupt or half-written); `reason` says why."""

  def __init__(self, message: str, reason: str):
    super().__init__(message)
    self.reason = reason


class TrainingInterrupted(Exception):
  """SIGINT/SIGTERM arrived; a checkpoint was saved and the run can be resumed."""

  def __init__(self, message: str, exit_code: int):
    super().__init__(message)
    self.exit_code = exit_code


def unknown_name(kind: str, name: str, known) -> DljaxError:
  """The error for a name that is not in a registry, listing the known names."""
  return DljaxError(f"unknown {kind} {name!r}; known {kind}s: {', '.join(sorted(known))}")


def bad_value(name: str, value, rule: str) -> DljaxError:
  """The error for config value `name` that breaks `rule` (e.g. "at least 1")."""
  return DljaxError(f"{name}={value!r} is invalid: it must be {rule}; set --config.{name}")
