"""Test set-up: two CPU devices (as the entry scripts use on this 2-core machine) and helpers."""

import os
import subprocess
import sys

import jax
import pytest

jax.config.update("jax_num_cpu_devices", 2)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAKESPEARE = os.path.join(os.path.dirname(REPO), "shared", "data", "tinyshakespeare.txt")


def run_module(module: str, *args: str, timeout: float = 300, **popen) -> subprocess.CompletedProcess:
  """Runs `python -m module args...` from the repo root, as a user would."""
  return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
                        text=True, timeout=timeout, **popen)


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
