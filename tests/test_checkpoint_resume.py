"""Checkpoints: round trip, resume after SIGKILL bitwise equal, SIGTERM, refusal of foreign or
corrupt checkpoints, NaN stops with the last good checkpoint kept."""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import (
  REPO,
  assert_trees_equal,
  config_path,
  run_module,
  saved_state,
  signal_after_checkpoint,
  start_module,
)

from dljax.checkpoint import Checkpointer
from dljax.config import base_config
from dljax.errors import CheckpointMismatchError
from dljax.models import build_model
from dljax.optim import make_optimizer
from dljax.train_state import init_model_state

SMOKE = config_path("mnist_cnn") + ":smoke"
# Long enough to be killed half way; checkpoints every 20 steps.
LONG = [
  "--config.num_steps=300",
  "--config.checkpoint_every_steps=20",
  "--config.log_every_steps=10",
  "--config.quiet=True",
]


def train_cli(workdir, *extra, **popen):
  return run_module(
    "experiments.train", f"--config={SMOKE}", f"--workdir={workdir}", *extra, **popen
  )


def test_train_state_round_trip_with_batch_stats(tmp_path):
  opt = base_config().optimizer
  state = init_model_state(
    build_model("resnet20", num_classes=10),
    make_optimizer(opt, 10),
    jax.random.PRNGKey(0),
    jnp.zeros((1, 8, 8, 1)),
  )
  state = state.replace(step=jnp.asarray(7, jnp.int32))
  ckpt = Checkpointer(str(tmp_path), identity={"model": "resnet20", "features": (1, 2)})
  ckpt.save(7, state, {"note": "x"}, wait=True)
  assert ckpt.latest_step() == 7
  assert ckpt.check_identity(7)["note"] == "x"
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)
  restored = ckpt.restore(7, abstract)
  assert "batch_stats" in restored.mutable
  assert_trees_equal(state, restored)
  with pytest.raises(CheckpointMismatchError, match="different experiment"):
    Checkpointer(str(tmp_path), identity={"model": "resnet18"}).check_identity(7)


def test_sigkill_then_rerun_resumes_and_ends_bitwise_identical(tmp_path):
  reference, killed = tmp_path / "reference", tmp_path / "killed"
  assert train_cli(reference, *LONG).returncode == 0
  proc = start_module("experiments.train", f"--config={SMOKE}", f"--workdir={killed}", *LONG)
  signal_after_checkpoint(proc, killed, 60, signal.SIGKILL)
  proc.wait()
  resumed = train_cli(killed, *LONG)
  assert resumed.returncode == 0, resumed.stderr
  ref_summary = json.loads((reference / "summary.json").read_text())
  res_summary = json.loads((killed / "summary.json").read_text())
  assert res_summary["resumed_from_step"] >= 60 and res_summary["steps"] == 300
  assert res_summary["final"] == ref_summary["final"]
  assert_trees_equal(saved_state(reference, 300), saved_state(killed, 300))
  steps = [
    json.loads(l)["step"]
    for l in (killed / "metrics.jsonl").read_text().splitlines()
    if '"train"' in l
  ]
  assert steps == sorted(set(steps))  # no duplicated records after the resume


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path):
  proc = start_module(
    "experiments.train",
    f"--config={SMOKE}",
    f"--workdir={tmp_path}",
    *LONG,
    text=True,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
  )
  signal_after_checkpoint(proc, tmp_path, 20, signal.SIGTERM)
  _, err = proc.communicate(timeout=60)
  assert proc.returncode == 128 + signal.SIGTERM
  assert "SIGTERM received" in err and "Run the same command again to resume" in err
  assert "Traceback" not in err
  latest = Checkpointer(str(tmp_path / "checkpoints"), identity={}).latest_step()
  assert 20 <= latest < 300


# A run whose fourth step never finishes, the main thread blocked inside jaxlib (as in an XLA
# deadlock) waiting for the step's metrics; it checkpoints every step.
HANGING_RUN = """
import os, sys, threading
import jax, jax.numpy as jnp
from dljax import loop, parallel
from dljax.config import base_config
from dljax.tasks import loop_options

def step_that_hangs_at_3(step):
  if step == 3:
    open(os.path.join(sys.argv[1], "hanging"), "w").close()
    threading.Event().wait()
  return step

@jax.jit
def train_step(state, feed):
  step = jax.pure_callback(step_that_hangs_at_3, jax.ShapeDtypeStruct((), jnp.int32), state["step"])
  return {"w": state["w"] + 1, "step": step + 1}, {"loss": state["w"]}

config = base_config()
config.update(log_every_steps=1, checkpoint_every_steps=1, quiet=True)
loop.run(loop.Experiment(init_state=lambda: {"w": jnp.float32(0), "step": jnp.int32(0)},
                         train_step=train_step, feed=lambda step: None, evaluate=lambda state: {},
                         num_steps=10, identity={}, mesh=parallel.make_data_mesh(1)),
         loop_options(config), sys.argv[1])
"""


def test_second_signal_during_a_hung_step_exits_at_once_naming_the_checkpoint(tmp_path):
  proc = subprocess.Popen(
    [sys.executable, "-c", HANGING_RUN, str(tmp_path)],
    cwd=REPO,
    text=True,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
  )
  try:
    deadline = time.time() + 120
    while not ((tmp_path / "hanging").exists() and (tmp_path / "checkpoints" / "3").exists()):
      assert proc.poll() is None and time.time() < deadline, "the run ended before its step hung"
      time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    time.sleep(1)
    assert proc.poll() is None, "the first signal must only ask for a clean stop"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
  finally:
    proc.kill()  # only if the test failed: the hung run ignores signals
  assert proc.returncode == 128 + signal.SIGINT
  assert "SIGTERM received: stopping after the step in progress" in err
  assert "SIGINT received again: exiting now" in err
  assert f"last checkpoint is step 3 in {tmp_path / 'checkpoints'}" in err
  assert "run the same command again to resume" in err and "Traceback" not in err


def test_workdir_of_another_model_is_refused_and_left_alone(tmp_path):
  assert train_cli(tmp_path, "--config.num_steps=10", "--config.quiet=True").returncode == 0
  before = sorted(os.listdir(tmp_path / "checkpoints"))
  other = train_cli(tmp_path, "--config.model.dense=16", "--config.quiet=True")
  assert other.returncode == 2
  assert "different experiment" in other.stderr and "Traceback" not in other.stderr
  assert sorted(os.listdir(tmp_path / "checkpoints")) == before


def test_corrupt_checkpoint_is_reported_not_deleted(tmp_path):
  assert train_cli(tmp_path, "--config.num_steps=10", "--config.quiet=True").returncode == 0
  state_dir = tmp_path / "checkpoints" / "10" / "state"
  for root, _, files in os.walk(state_dir):
    for f in files:
      if "manifest" in f or f.endswith(".data") or "ocdbt" in root:
        pathlib.Path(root, f).write_bytes(b"garbage")
  shutil.rmtree(tmp_path / "checkpoints" / "10" / "state" / "d", ignore_errors=True)
  out = train_cli(tmp_path, "--config.num_steps=20", "--config.quiet=True")
  assert out.returncode == 2, out.stderr
  assert "cannot be read" in out.stderr and "Nothing was deleted" in out.stderr
  assert (tmp_path / "checkpoints" / "10").exists()


def test_nan_loss_stops_names_the_step_and_keeps_good_checkpoints(tmp_path):
  out = train_cli(
    tmp_path,
    "--config.optimizer.learning_rate=1e30",
    "--config.optimizer.warmup_steps=3",
    "--config.checkpoint_every_steps=1",
    "--config.log_every_steps=1",
    "--config.quiet=True",
  )
  assert out.returncode == 2
  assert "NaN or inf at step" in out.stderr and "last good checkpoint" in out.stderr
  steps = os.listdir(tmp_path / "checkpoints")
  assert steps, "the good checkpoints before the blow-up must be kept"
  for step in steps:
    leaves = jax.tree.leaves(saved_state(tmp_path, int(step)))
    assert all(np.isfinite(np.asarray(x)).all() for x in leaves if np.asarray(x).dtype.kind == "f")
