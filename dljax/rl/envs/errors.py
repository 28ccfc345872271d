"""Errors raised by dljax.rl.envs.

They are `DljaxError`s, so entry scripts print them without a traceback, and also the builtin
type a caller would expect (`ValueError`, `ImportError`).
"""

from dljax.errors import DljaxError


class EnvValueError(DljaxError, ValueError):
  """An unknown environment name, an action outside its space or an unsupported space."""


class MissingGymnasiumError(DljaxError, ImportError):
  """A `gym:` environment was requested but gymnasium is not installed."""
