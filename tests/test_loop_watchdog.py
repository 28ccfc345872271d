"""The loop's watchdog: a run whose step stops completing ends with a dump and a resumable exit."""

import json
import subprocess
import sys

from conftest import REPO

from dljax.watchdog import DUMP_FILE, STALL_EXIT_CODE

# A tiny run: 6 steps of 1 call each, a checkpoint every 2 steps, a 1-second watchdog. Mode
# `stall`: the call of step 3 (steps 0-2 done, checkpoint 2 written) never finishes within the
# timeout, its callback sleeping inside the jitted step. Mode `host`: a plain-Python step (not
# compiled ahead of time) whose first call, the one that compiles, takes twice the timeout.
RUN = """
import sys, time
import jax, jax.numpy as jnp
from dljax import checkpoint, loop, parallel
from dljax.experiment import Experiment, LoopOptions
checkpoint.install()  # as the entry points do
from dljax.steps import TrainStep

workdir, mode = sys.argv[1], sys.argv[2]

def sleep_at_step_3(step):
  if mode == "stall" and step == 3:
    time.sleep(120)
  return step

@jax.jit
def train_step(state, feed):
  step = jax.pure_callback(sleep_at_step_3, jax.ShapeDtypeStruct((), jnp.int32), state["step"])
  return {"w": state["w"] + 1, "step": step + 1}, {"loss": state["w"]}

def host_step(state, feed):
  if int(state["step"]) == 0:
    time.sleep(2.0)
  return train_step(state, feed)

options = LoopOptions(log_every_steps=1, eval_every_steps=0, checkpoint_every_steps=2,
                      keep_checkpoints=5, quiet=True, watchdog_timeout_s=1.0, config={})
experiment = Experiment(
  init_state=lambda: {"w": jnp.float32(0), "step": jnp.int32(0)},
  train_step=TrainStep(host_step if mode == "host" else train_step), host_driven=mode == "host",
  feed=lambda step: None,
  evaluate=lambda state: {"w": float(state["w"])}, num_steps=6, identity={},
  mesh=parallel.make_data_mesh(1))
loop.run(experiment, options, workdir)
"""


def run(workdir, mode: str) -> subprocess.CompletedProcess:
  return subprocess.run(
    [sys.executable, "-c", RUN, str(workdir), mode],
    cwd=REPO,
    capture_output=True,
    check=False,
    text=True,
    timeout=120,
  )


def test_a_stalled_step_ends_the_run_with_a_dump_and_the_rerun_resumes(tmp_path):
  stalled = run(tmp_path, "stall")
  assert stalled.returncode == STALL_EXIT_CODE, stalled.stderr
  err = stalled.stderr
  assert "watchdog: no train step completed for 1 s; the run is stalled after step 3" in err
  assert f"The last checkpoint is step 2 in {tmp_path / 'checkpoints'}" in err
  assert "run the same command again to resume from it" in err and "Traceback" not in err
  assert "in sleep_at_step_3" in err  # faulthandler's dump of the stuck callback's thread
  dump = (tmp_path / DUMP_FILE).read_text()
  assert "the run is stalled after step 3" in dump and "in sleep_at_step_3" in dump
  assert not (tmp_path / "summary.json").exists()

  resumed = run(tmp_path, "resume")
  assert resumed.returncode == 0, resumed.stderr
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["resumed_from_step"] == 2 and summary["steps"] == 6
  assert summary["final"] == {"w": 6.0}


def test_the_compiling_first_call_of_a_host_driven_step_is_not_a_stall(tmp_path):
  slow_first = run(tmp_path, "host")
  assert slow_first.returncode == 0, slow_first.stderr
  assert json.loads((tmp_path / "summary.json").read_text())["final"] == {"w": 6.0}
