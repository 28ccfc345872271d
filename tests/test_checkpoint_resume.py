"""Checkpoints: round trip, resume after SIGKILL bitwise equal, SIGTERM, refusal of unreadable
checkpoints (moved aside when an older one can be resumed from), a full disk while
saving, NaN stops with the last good checkpoint kept. (A WORKDIR of another experiment: see
test_cli_errors.py.)"""

import json
import os
import pathlib
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
    build_model({"name": "resnet20"}, num_classes=10),
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
from dljax import checkpoint, loop, parallel
from dljax.config import base_config
from dljax.experiment import Experiment
checkpoint.install()  # as the entry points do
from dljax.steps import TrainStep
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
loop.run(Experiment(init_state=lambda: {"w": jnp.float32(0), "step": jnp.int32(0)},
                    train_step=TrainStep(train_step), feed=lambda step: None,
                    evaluate=lambda state: {}, num_steps=10, identity={},
                    mesh=parallel.make_data_mesh(1)),
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


def corrupt(step_dir: pathlib.Path, how: str):
  """Overwrites a checkpoint's array files with garbage, or cuts every file of it to half its
  size (a write that stopped half way on a file system without atomic renames)."""
  for path in (step_dir / "state").rglob("*"):
    if path.is_file():
      if how == "garbage" and ("manifest" in path.name or path.parent.name == "d"):
        path.write_bytes(b"garbage")
      elif how == "half_written":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_only_checkpoint_unreadable_is_reported_and_nothing_moved(tmp_path):
  assert train_cli(tmp_path, "--config.num_steps=10", "--config.quiet=True").returncode == 0
  corrupt(tmp_path / "checkpoints" / "10", "garbage")
  out = train_cli(tmp_path, "--config.num_steps=20", "--config.quiet=True")
  assert out.returncode == 2, out.stderr
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and "cannot be read" in lines[0] and "Nothing was deleted" in lines[0]
  assert (tmp_path / "checkpoints" / "10").exists()
  assert not (tmp_path / "corrupt_checkpoints").exists()  # no older one to resume from


RESTORE_CORRUPT = """
import sys
import jax
import jax.numpy as jnp
from dljax.checkpoint import Checkpointer, install
from dljax.errors import UnreadableCheckpointError
install()  # as the entry points do
state = {"w": jnp.ones((4, 4)), "b": jnp.zeros(3)}
abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
checkpointer = Checkpointer(sys.argv[1], {"experiment": "test"})
for _ in range(int(sys.argv[2])):
  try:
    checkpointer.restore_newest(abstract)
  except UnreadableCheckpointError:
    continue
  sys.exit("a corrupt checkpoint was restored")
"""


def test_failed_restores_print_nothing_late(tmp_path):
  # A failed orbax restore abandons coroutines and sibling reads; freed later (up to the process
  # exit) they printed a warning or an asyncio error after the one-line error, about one restore
  # in 15: 60 tries in a fresh process, as the CLI's.
  checkpointer = Checkpointer(str(tmp_path / "checkpoints"), {"experiment": "test"})
  checkpointer.save(10, {"w": jnp.ones((4, 4)), "b": jnp.zeros(3)}, wait=True)
  corrupt(tmp_path / "checkpoints" / "10", "garbage")
  out = subprocess.run(
    [sys.executable, "-c", RESTORE_CORRUPT, str(tmp_path / "checkpoints"), "60"],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert out.returncode == 0 and out.stderr == "", out.stderr[-3000:]


def test_unreadable_newest_checkpoints_are_moved_aside_and_the_run_resumes_before_them(tmp_path):
  args = ["--config.num_steps=40", "--config.quiet=True"]  # checkpoints at 10, 20, 30, 40
  assert train_cli(tmp_path, *args).returncode == 0
  final = json.loads((tmp_path / "summary.json").read_text())["final"]
  state = saved_state(tmp_path, 40)
  corrupt(tmp_path / "checkpoints" / "40", "garbage")
  corrupt(tmp_path / "checkpoints" / "30", "half_written")
  out = train_cli(tmp_path, *args)
  assert out.returncode == 0, out.stderr
  warnings = [l for l in out.stderr.splitlines() if l.startswith("warning:")]
  corrupt_dir = tmp_path / "corrupt_checkpoints"
  assert len(warnings) == 2 and all("cannot be read" in w for w in warnings), out.stderr
  assert f"moved it to {corrupt_dir / '40'} and resuming from step 20" in warnings[0]
  assert f"moved it to {corrupt_dir / '30'} and resuming from step 20" in warnings[1]
  assert sorted(os.listdir(corrupt_dir)) == ["30", "40"]  # kept, not deleted
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["resumed_from_step"] == 20 and summary["final"] == final
  assert_trees_equal(saved_state(tmp_path, 40), state)  # as if nothing had happened


DISK_RUN = ["--config.num_steps=100", "--config.checkpoint_every_steps=20", "--config.quiet=True"]


@pytest.fixture
def small_disk(tmp_path):
  """A 16 MB tmpfs (mounting needs root, as in this project's CI)."""
  mount = tmp_path / "disk"
  mount.mkdir()
  made = subprocess.run(
    ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
    capture_output=True,
    check=False,
  )
  if made.returncode:
    pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
  yield mount
  subprocess.run(["umount", str(mount)], check=True)


def test_disk_full_while_checkpointing_is_one_line_and_the_rerun_resumes(small_disk):
  workdir = small_disk / "run"
  proc = start_module(
    "experiments.train",
    f"--config={SMOKE}",
    f"--workdir={workdir}",
    *DISK_RUN,
    text=True,
    stderr=subprocess.PIPE,
  )
  try:
    signal_after_checkpoint(proc, workdir, 20, 0)  # signal 0 sends nothing: waits for step 20
    with open(small_disk / "filler", "wb", buffering=0) as f:  # fill the disk to the last byte
      for size in (1 << 20, 4096, 1):
        try:
          while True:
            f.write(b"\0" * size)
        except OSError:
          pass
    _, err = proc.communicate(timeout=120)
  finally:
    proc.kill()  # only if the test failed
  assert proc.returncode == 2, err
  lines = err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: the disk is full"), err
  saved = Checkpointer(str(workdir / "checkpoints"), identity={}).committed_steps()
  assert saved and f"previous checkpoint (step {saved[-1]}) is intact" in lines[0]
  saved_state(workdir, saved[-1])  # reads back
  (small_disk / "filler").unlink()
  resumed = train_cli(workdir, *DISK_RUN)
  assert resumed.returncode == 0, resumed.stderr
  summary = json.loads((workdir / "summary.json").read_text())
  assert summary["resumed_from_step"] == saved[-1] and summary["steps"] == 100


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


# Prints whether `import dljax.checkpoint` changed the process, then whether `install()` did.
IMPORT_ONLY = """
import sys
import jax
import orbax.checkpoint as ocp
hook, handler = sys.unraisablehook, ocp.type_handlers.get_type_handler(jax.Array)
import dljax.checkpoint
print(sys.unraisablehook is hook, ocp.type_handlers.get_type_handler(jax.Array) is handler)
dljax.checkpoint.install()
print(sys.unraisablehook is hook, ocp.type_handlers.get_type_handler(jax.Array) is handler)
"""


def test_importing_the_checkpoint_module_changes_nothing_until_install():
  out = subprocess.check_output([sys.executable, "-c", IMPORT_ONLY], cwd=REPO, text=True)
  assert out.split() == ["True", "True", "False", "False"]
