"""Device setup (what `dljax.parallel.setup_devices` hands XLA before the backend starts) and
where the state lives (`fsdp_sharding`)."""

import subprocess
import sys

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from dljax import parallel
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


def test_fsdp_splits_each_array_on_its_largest_dimension_the_devices_divide():
  mesh = parallel.make_data_mesh(2)
  shapes = {
    "wide": jax.ShapeDtypeStruct((16, 48), jnp.float32),
    "tall": jax.ShapeDtypeStruct((64, 16), jnp.float32),
    "odd_rows": jax.ShapeDtypeStruct((63, 7, 2), jnp.float32),
    "square": jax.ShapeDtypeStruct((4, 4), jnp.float32),
    "odd": jax.ShapeDtypeStruct((5, 7), jnp.float32),
    "scalar": jax.ShapeDtypeStruct((), jnp.int32),
  }
  specs = {k: s.spec for k, s in parallel.fsdp_sharding(shapes, mesh).items()}
  assert specs == {
    "wide": P(None, "data"),
    "tall": P("data", None),
    "odd_rows": P(None, None, "data"),
    "square": P("data", None),
    "odd": P(None, None),
    "scalar": P(),
  }
  one_device = parallel.fsdp_sharding(shapes, parallel.make_data_mesh(1))
  assert all(s.spec == P(*[None] * len(shapes[k].shape)) for k, s in one_device.items())
