"""Command-line plumbing shared by the entry scripts: flag parsing and error reporting.

Bad input must end in one readable line, not a traceback: absl's flag errors, ml_collections'
unknown-key errors (a raw AttributeError from deep inside flag parsing), config files that are
missing or not Python, `DljaxError`s and a full disk all become `error: ...` on stderr and exit
status 2.
"""

import errno
import importlib.util
import sys
from collections.abc import Callable

from absl import flags

from dljax.errors import DljaxError, TrainingInterrupted


def load_config(spec: str):
  """Loads `path/to/config.py[:variant]` as config_flags does."""
  path, _, variant = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("dljax_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(variant) if variant else module.get_config()


def _flag_value(argv: list[str], name: str) -> str:
  for i, arg in enumerate(argv):
    if arg.startswith(name + "="):
      return arg.split("=", 1)[1]
    if arg == name and i + 1 < len(argv):
      return argv[i + 1]
  raise ValueError(f"{name} is not in the command line")


def _bad_override(argv: list[str]) -> str:
  """Names the `--config.KEY` override whose key does not exist, and lists the valid keys."""
  overrides = [a for a in argv[1:] if a.startswith("--config.")]
  config = load_config(_flag_value(argv, "--config"))
  valid = set()

  def walk(node, prefix):
    for key, value in node.items():
      valid.add(prefix + key)
      if hasattr(value, "items"):
        walk(value, prefix + key + ".")

  walk(config, "")
  for arg in overrides:
    key = arg[len("--config.") :].split("=", 1)[0]
    if key not in valid:
      return (
        f"unknown config key {key!r} in {arg!r}; the config's keys are: {', '.join(sorted(valid))}"
      )
  return "a --config.KEY=VALUE override is invalid"


def _last_line(text: str) -> str:
  return text.strip().splitlines()[-1].strip() if text.strip() else ""


def parse_flags(argv: list[str]) -> list[str]:
  """Parses `argv` into absl's FLAGS; on bad input prints one error line and exits with 2."""
  try:
    argv = flags.FLAGS(argv)
    if "config" in flags.FLAGS:  # config_flags keeps a load error until the config is read
      flags.FLAGS.config.get("task")
    return argv
  except OSError as e:  # no such config file (the first error says which)
    while e.__cause__ is not None:
      e = e.__cause__
    message = f"cannot load --config: {_last_line(str(e))}"
  except SyntaxError as e:
    message = f"cannot load --config: {e.filename} is not a Python config file ({e.msg})"
  except flags.Error as e:
    message = str(e)
  except (AttributeError, KeyError) as e:  # ml_collections: the override names no field
    del e
    message = _bad_override(argv)
  except ValueError as e:
    message = str(e)
  if "Traceback (most recent call last)" in message:  # config_flags quotes get_config's error
    message = f"cannot load --config: {_last_line(message).split(': ', 1)[-1]}"
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def run_main(main: Callable[[list[str]], None], argv: list[str] | None = None):
  """Parses flags, runs `main`, and turns user-facing errors into exit codes."""
  argv = parse_flags(sys.argv if argv is None else argv)
  try:
    main(argv)
  except TrainingInterrupted as e:
    print(f"\n{e}", file=sys.stderr)
    sys.exit(e.exit_code)
  except DljaxError as e:
    print(f"\nerror: {e}", file=sys.stderr)
    sys.exit(2)
  except OSError as e:
    if e.errno not in (errno.ENOSPC, errno.EDQUOT):
      raise
    # A figure or log written after the failed write that matters (a checkpoint's) fails too:
    # report the first.
    first = e.__context__
    while first is not None and not isinstance(first, DljaxError):
      first = first.__context__
    message = first or (
      f"the disk is full ({e.strerror}: {e.filename}); nothing already saved was lost: free "
      f"some space, then rerun the same command to resume"
    )
    print(f"\nerror: {message}", file=sys.stderr)
    sys.exit(2)
  except Exception as e:
    if "jax" in sys.modules:  # a job of several processes whose peer died: one line, exit now
      from dljax.distributed import exit_if_peer_lost

      exit_if_peer_lost(e)
    raise
