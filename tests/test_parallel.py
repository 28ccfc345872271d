"""Device setup: what `dljax.parallel.setup_devices` hands XLA before the backend starts."""

import subprocess
import sys

from tests.conftest import REPO, run_module


def test_xla_optimization_level_reaches_xla_flags_and_keeps_the_users():
  script = (
    "import os; os.environ['XLA_FLAGS'] = '--xla_cpu_enable_fast_math=false'\n"
    "from dljax import parallel; parallel.setup_devices(1, False, 1)\n"
    "import jax; assert jax.device_count() == 1; print(os.environ['XLA_FLAGS'])"
  )
  out = subprocess.run(
    [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
  )
  assert out.stdout.split() == [
    "--xla_cpu_enable_fast_math=false",
    "--xla_backend_optimization_level=1",
  ]


def test_an_unknown_xla_optimization_level_is_one_line_error(tmp_path):
  out = run_module(
    "experiments.train",
    "--config=experiments/configs/mnist_mlp.py:smoke",
    f"--workdir={tmp_path / 'run'}",
    "--config.xla_optimization_level=4",
  )
  assert out.returncode == 2
  message = (
    "error: xla_optimization_level=4 is not 0, 1, 2, 3 or -1 (XLA's default); "
    "set --config.xla_optimization_level to one of them"
  )
  assert out.stderr.strip().splitlines() == [message]
  assert not (tmp_path / "run").exists()
