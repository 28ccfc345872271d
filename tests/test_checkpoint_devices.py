"""A checkpoint saved on 2 devices restores onto 1 and onto 4 (and onto 2 processes): the loop's
restore gives the saved values exactly, placed on the new mesh, and training goes on to the
losses of the uninterrupted run. A GPT state saved split over 2 devices (FSDP) restores exactly
onto 1 and 4 devices, split over them or replicated."""

import json
import shutil
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest

from dljax import parallel
from dljax.checkpoint import Checkpointer
from dljax.tasks import build_experiment
from tests.conftest import REPO, config_path, load_config, run_module

SMOKE = config_path("mnist_cnn") + ":smoke"
GPT = config_path("shakespeare_gpt") + ":smoke"
# The smoke GPT's state: 9 parameters (every one with a dimension of 16) and their 2 Adam moments
# split on 4 devices; its step, its raw key (2,) and the optimizer's 2 counters stay replicated.
GPT_ARRAYS, GPT_SPLIT_ON = 31, {1: 0, 4: 27}
# Level 0: compiling is most of a smoke run's CPU time (dljax.parallel.setup_devices).
FLAGS = [
  f"--config={SMOKE}",
  "--config.log_every_steps=1",
  "--config.quiet=True",
  "--config.xla_optimization_level=0",
]

# For each [WORKDIR, CONFIG, {key: value}, resume] of the JSON list argv[2]: restores step 10 of
# WORKDIR as the loop does (the shapes of the jitted init placed on this process's mesh:
# replicated, and where the config splits its state, split as it says), checks every array
# against the raw saved values, then, if `resume`, resumes the run to its end.
RESTORE_AND_RESUME = """
import json
import sys
import numpy as np
import jax
from jax.sharding import NamedSharding, PartitionSpec as P
from dljax import parallel
parallel.setup_devices(int(sys.argv[1]), xla_optimization_level=0)
from dljax.checkpoint import Checkpointer, install
from dljax.cli import load_config
from dljax.tasks import build_experiment, train
install()  # as the entry points do
def by_path(tree):  # a TrainState's .params['Dense_0'] is the raw dict's ['params']['Dense_0']
  name = lambda k: str(getattr(k, "name", getattr(k, "key", getattr(k, "idx", k))))
  return {tuple(map(name, p)): x for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}
mesh = parallel.make_data_mesh()
for workdir, config_path, overrides, resume in json.loads(sys.argv[2]):
  config = load_config(config_path)
  config.quiet = True
  config.log_every_steps = 1
  config.update_from_flattened_dict(overrides)
  with jax.set_mesh(mesh):
    exp = build_experiment(config, mesh)
    ckpt = Checkpointer(workdir + "/checkpoints", exp.identity)
    placements = {"replicated": NamedSharding(mesh, P())}
    if exp.state_sharding is not None:
      placements["split"] = exp.state_sharding
    restored = {
      how: ckpt.restore(10, jax.eval_shape(jax.jit(exp.init_state, out_shardings=sharding)))
      for how, sharding in placements.items()
    }
  raw_leaves = by_path(ckpt.restore_raw(10))
  for how, state in restored.items():
    leaves = by_path(state)
    assert leaves.keys() == raw_leaves.keys(), (leaves.keys(), raw_leaves.keys())
    for path, x in leaves.items():
      assert x.sharding.mesh.size == jax.device_count() == int(sys.argv[1]), x.sharding
      np.testing.assert_array_equal(np.asarray(x), np.asarray(raw_leaves[path]), err_msg=str(path))
    split = sum(not x.sharding.is_fully_replicated for x in leaves.values())
    print(f"{config.task}: restored {len(leaves)} arrays exactly on {mesh.size} devices, {how} "
          f"({split} split)")
  if resume:
    train(config, workdir)
"""


def records(workdir) -> list[dict]:
  with open(workdir / "metrics.jsonl") as f:
    return [json.loads(line) for line in f]


def save_initial_fsdp_gpt(workdir, overrides: dict):
  """A step-10 checkpoint of the smoke GPT as the loop writes it, split over this process's 2
  devices (FSDP): its initial state after one update with the parameters as the gradient, which
  makes every Adam moment distinct and nonzero at the cost of compiling the optimizer alone."""
  config = load_config("shakespeare_gpt", "smoke", **overrides)
  mesh = parallel.make_data_mesh(2)
  with jax.set_mesh(mesh):
    exp = build_experiment(config, mesh)
    state = jax.jit(exp.init_state, out_shardings=exp.state_sharding)()
    update = jax.jit(lambda s: s.apply_gradients(s.params), out_shardings=exp.state_sharding)
    state = update(state)
  for name, tree in [
    ("kernel", state.params),
    ("mu", optax.tree_utils.tree_get(state.opt_state, "mu")),
    ("nu", optax.tree_utils.tree_get(state.opt_state, "nu")),
  ]:  # each device holds half of a weight matrix and of its Adam moments
    matrix = tree["h_0"]["mlp"]["c_fc"]["kernel"]
    assert [s.data.shape for s in matrix.addressable_shards] == [(16, 32)] * 2, name
  Checkpointer(str(workdir / "checkpoints"), exp.identity).save(10, state, exp.meta, wait=True)


@pytest.mark.timeout(300)
def test_a_checkpoint_saved_on_two_devices_resumes_on_one_and_four(tmp_path, corpus_path):
  full, gpt = tmp_path / "full", tmp_path / "gpt"
  gpt_overrides = {"dataset": f"text:{corpus_path}", "state_sharding": "fsdp"}
  save_initial_fsdp_gpt(gpt, gpt_overrides)
  out = run_module("experiments.train", *FLAGS, f"--workdir={full}", "--config.cpu_devices=2")
  assert out.returncode == 0, out.stderr[-3000:]
  resumed = {}
  for devices in (1, 4):
    workdir = tmp_path / f"on{devices}"
    shutil.copytree(full, workdir)
    shutil.rmtree(workdir / "checkpoints" / "20")
    runs = [[str(workdir), SMOKE, {}, True], [str(gpt), GPT, gpt_overrides, False]]
    resumed[devices] = subprocess.Popen(
      [sys.executable, "-c", RESTORE_AND_RESUME, str(devices), json.dumps(runs)],
      cwd=REPO,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
  try:
    for devices, proc in resumed.items():
      out, err = proc.communicate(timeout=240)
      assert proc.returncode == 0, err[-3000:]
      assert f"classification: restored 22 arrays exactly on {devices} devices, replicated" in out
      restored = f"language_model: restored {GPT_ARRAYS} arrays exactly on {devices} devices"
      assert f"{restored}, replicated (0 split)" in out
      assert f"{restored}, split ({GPT_SPLIT_ON[devices]} split)" in out
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
