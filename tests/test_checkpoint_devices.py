"""A checkpoint saved on 2 devices restores onto 1 and onto 4 (and onto 2 processes): the loop's
restore gives the saved values exactly, placed on the new mesh, and training goes on to the
losses of the uninterrupted run."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, config_path, run_module

SMOKE = config_path("mnist_cnn") + ":smoke"
# Level 1: compiling is most of a smoke run's CPU time (dljax.parallel.setup_devices).
FLAGS = [
  f"--config={SMOKE}",
  "--config.log_every_steps=1",
  "--config.quiet=True",
  "--config.xla_optimization_level=1",
]

# Restores step 10 of WORKDIR as the loop does (the shapes of the jitted init, replicated on this
# process's mesh), checks it against the raw saved values, then resumes the run to its end.
RESTORE_AND_RESUME = """
import sys
import numpy as np
import jax
from jax.sharding import NamedSharding, PartitionSpec as P
from dljax import parallel
parallel.setup_devices(int(sys.argv[1]), xla_optimization_level=1)
from dljax.checkpoint import Checkpointer
from dljax.cli import load_config
from dljax.tasks import build_experiment, train
config = load_config(sys.argv[3])
config.quiet = True
config.log_every_steps = 1
mesh = parallel.make_data_mesh()
with jax.set_mesh(mesh):
  exp = build_experiment(config, mesh)
  ckpt = Checkpointer(sys.argv[2] + "/checkpoints", exp.identity)
  init = jax.jit(exp.init_state, out_shardings=NamedSharding(mesh, P()))
  state = ckpt.restore(10, jax.eval_shape(init))
def by_path(tree):  # a TrainState's .params['Dense_0'] is the raw dict's ['params']['Dense_0']
  name = lambda k: str(getattr(k, "name", getattr(k, "key", getattr(k, "idx", k))))
  return {tuple(map(name, p)): x for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}
leaves, raw_leaves = by_path(state), by_path(ckpt.restore_raw(10))
assert leaves.keys() == raw_leaves.keys(), (leaves.keys(), raw_leaves.keys())
for path, x in leaves.items():
  assert x.sharding.mesh.size == jax.device_count() == int(sys.argv[1]), x.sharding
  np.testing.assert_array_equal(np.asarray(x), np.asarray(raw_leaves[path]), err_msg=str(path))
print(f"restored {len(leaves)} arrays exactly on {mesh.size} devices")
train(config, sys.argv[2])
"""


def records(workdir) -> list[dict]:
  with open(workdir / "metrics.jsonl") as f:
    return [json.loads(line) for line in f]


@pytest.mark.timeout(300)
def test_a_checkpoint_saved_on_two_devices_resumes_on_one_and_four(tmp_path):
  full = tmp_path / "full"
  out = run_module("experiments.train", *FLAGS, f"--workdir={full}", "--config.cpu_devices=2")
  assert out.returncode == 0, out.stderr[-3000:]
  resumed = {}
  for devices in (1, 4):
    workdir = tmp_path / f"on{devices}"
    shutil.copytree(full, workdir)
    shutil.rmtree(workdir / "checkpoints" / "20")
    resumed[devices] = subprocess.Popen(
      [sys.executable, "-c", RESTORE_AND_RESUME, str(devices), str(workdir), SMOKE],
      cwd=REPO,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
  try:
    for devices, proc in resumed.items():
      out, err = proc.communicate(timeout=240)
      assert proc.returncode == 0, err[-3000:]
      assert f"restored 22 arrays exactly on {devices} devices" in out
  finally:
    for proc in resumed.values():
      if proc.poll() is None:
        proc.kill()
        proc.wait()
  expected = records(full)
  for devices in resumed:
    got = records(tmp_path / f"on{devices}")
    assert [(r["step"], r["split"]) for r in got] == [(r["step"], r["split"]) for r in expected]
    for a, b in zip(got, expected):
      for name in b.keys() - {"step", "split"}:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, err_msg=f"{devices}: {name}")
