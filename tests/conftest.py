"""Test set-up: two CPU devices (as the entry scripts use on this 2-core machine) and helpers."""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

jax.config.update("jax_num_cpu_devices", 2)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAKESPEARE = os.path.join(os.path.dirname(REPO), "shared", "data", "tinyshakespeare.txt")


def run_module(module: str, *args: str, timeout: float = 300, **popen) -> subprocess.CompletedProcess:
  """Runs `python -m module args...` from the repo root, as a user would."""
  return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
                        text=True, timeout=timeout, **popen)


def start_module(module: str, *args: str, **popen) -> subprocess.Popen:
  """Starts `python -m module args...` from the repo root without waiting for it."""
  popen.setdefault("stdout", subprocess.DEVNULL)
  popen.setdefault("stderr", subprocess.DEVNULL)
  return subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, **popen)


def signal_after_checkpoint(proc: subprocess.Popen, workdir, step: int, sig=signal.SIGKILL):
  """Sends `sig` to a training process as soon as it has written checkpoint `step`."""
  deadline = time.time() + 120
  while not (workdir / "checkpoints" / str(step)).exists():
    assert proc.poll() is None and time.time() < deadline, "run ended before it could be stopped"
    time.sleep(0.02)
  proc.send_signal(sig)


def saved_state(workdir, step):
  """The state saved at `step` in a run directory, as a plain tree."""
  import orbax.checkpoint as ocp
  return ocp.StandardCheckpointer().restore(os.path.join(workdir, "checkpoints", str(step), "state"))


def assert_trees_equal(a, b):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb)
  for x, y in zip(la, lb):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def config_path(name: str) -> str:
  return os.path.join(REPO, "experiments", "configs", f"{name}.py")


def load_config(name: str, variant: str = "", **overrides):
  from dljax.cli import load_config as load
  config = load(config_path(name) + (f":{variant}" if variant else ""))
  config.quiet = True
  config.update_from_flattened_dict(overrides)
  return config


@pytest.fixture
def shakespeare_path():
  if not os.path.exists(SHAKESPEARE):
    pytest.skip(f"corpus not found at {SHAKESPEARE} (the shared/ folder beside the checkout)")
  return SHAKESPEARE
