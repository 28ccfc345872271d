"""One run per WORKDIR: a second run is refused at once and the first goes on unharmed; a run
killed with SIGKILL leaves no lock behind."""

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, config_path, run_module, signal_after_checkpoint, start_module

from dljax import workdir_lock
from dljax.errors import DljaxError

SMOKE = config_path("mnist_cnn") + ":smoke"
# Far more steps than the test waits for: the first run must outlive the second's start-up on any
# machine, so the test stops it itself (SIGTERM: a clean stop with a checkpoint).
LONG = ["--config.num_steps=100000", "--config.checkpoint_every_steps=20", "--config.quiet=True"]
HOLD_LOCK = "import sys, time; from dljax import workdir_lock\nwith workdir_lock.hold(sys.argv[1]):\n  print('held', flush=True); time.sleep(600)"


def test_second_run_is_refused_at_once_and_the_first_goes_on(tmp_path):
  first = start_module(
    "experiments.train",
    f"--config={SMOKE}",
    f"--workdir={tmp_path}",
    *LONG,
    text=True,
    stderr=subprocess.PIPE,
  )
  signal_after_checkpoint(first, tmp_path, 20, 0)  # signal 0 sends nothing: waits until step 20
  t0 = time.perf_counter()
  second = run_module("experiments.train", f"--config={SMOKE}", f"--workdir={tmp_path}", *LONG)
  refused_in = time.perf_counter() - t0
  assert first.poll() is None, "the first run must still be running"
  assert second.returncode == 2, second.stderr
  assert second.stderr.strip().splitlines() == [
    (
      f"error: another run (pid {first.pid}) is using --workdir {tmp_path}; wait for it to end "
      f"or stop it (a rerun resumes from its last checkpoint), or pick another --workdir"
    )
  ]
  checkpoints = tmp_path / "checkpoints"
  last = max(int(step) for step in os.listdir(checkpoints) if step.isdigit())
  signal_after_checkpoint(first, tmp_path, last + 20, signal.SIGTERM)  # it went on training
  _, err = first.communicate(timeout=300)
  assert first.returncode == 128 + signal.SIGTERM, err
  assert not (tmp_path / workdir_lock.LOCK_FILE).exists()  # the run removes the file it made
  print(f"second run refused after {refused_in:.1f} s")


def test_lock_dies_with_its_holder_even_by_sigkill(tmp_path):
  holder = subprocess.Popen(
    [sys.executable, "-c", HOLD_LOCK, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True
  )
  try:
    assert holder.stdout.readline() == "held\n"
    refused = pytest.raises(DljaxError, match=f"another run \\(pid {holder.pid}\\) is using")
    with refused, workdir_lock.hold(str(tmp_path)):
      pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  finally:
    holder.kill()
  assert (tmp_path / workdir_lock.LOCK_FILE).exists()  # left behind by the killed run...
  with workdir_lock.hold(str(tmp_path)):  # ...but not locked
    assert (tmp_path / workdir_lock.LOCK_FILE).read_text() == f"{os.getpid()}\n"


def test_a_run_that_fails_before_writing_leaves_no_workdir(tmp_path):
  workdir = tmp_path / "new" / "run"
  with pytest.raises(DljaxError, match="bad data"), workdir_lock.hold(str(workdir)):
    raise DljaxError("bad data")
  assert os.listdir(tmp_path) == []  # what it created is gone
