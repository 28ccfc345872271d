"""One job as two JAX processes on localhost (experiments.launch, gloo collectives) trains like
one process, with its state replicated (mnist_mlp, stopped by a SIGTERM and resumed) or split over
the processes (the GPT): the same losses, and one set of files written by process 0. A SIGTERM to
one process stops the whole job at one step with one checkpoint; a process that dies ends the
others at once with one line."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO, run_module, signal_after_checkpoint, without_rate

TIMEOUT_S = 240
FAST_COMPILE = "--config.xla_optimization_level=0"  # compiling is most of a smoke run's CPU time


def records(workdir) -> list[dict]:
  with open(workdir / "metrics.jsonl") as f:
    return [json.loads(line) for line in f]


def records_so_far(workdir) -> list[dict]:
  """The complete lines of a running job's metrics.jsonl."""
  try:
    text = (workdir / "metrics.jsonl").read_text()
  except FileNotFoundError:
    return []
  return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def assert_same_metrics(job: list[dict], single: list[dict]):
  assert [(r["step"], r["split"]) for r in job] == [(r["step"], r["split"]) for r in single]
  for a, b in zip(job, single):
    for name, value in b.items():
      if name not in ("step", "split"):
        np.testing.assert_allclose(a[name], value, rtol=1e-5, err_msg=f"{name} at {b['step']}")


def train_both_ways(tmp_path, *flags: str, single_devices: int = 1):
  """The job on 2 processes of 1 device and the same run in 1 process of `single_devices`, side
  by side."""
  job = subprocess.Popen(
    [sys.executable, "-m", "experiments.launch", "--processes=2"]
    + [*flags, FAST_COMPILE, f"--workdir={tmp_path / 'job'}"],
    cwd=REPO,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )
  try:
    single = run_module(
      "experiments.train",
      *flags,
      FAST_COMPILE,
      f"--workdir={tmp_path / 'single'}",
      f"--config.cpu_devices={single_devices}",
      timeout=TIMEOUT_S,
    )
    out, err = job.communicate(timeout=TIMEOUT_S)
  finally:
    if job.poll() is None:
      job.kill()
      job.wait()
  assert single.returncode == 0, single.stderr[-3000:]
  assert job.returncode == 0, err[-3000:]
  assert out.count("final:") == 1  # only process 0 prints
  return tmp_path / "job", tmp_path / "single"


@pytest.mark.timeout(300)
def test_two_processes_train_shakespeare_gpt_with_split_state_like_one(tmp_path, corpus_path):
  """With its state split over the 2 processes (FSDP; the 1-process run on one device has nothing
  to split): the same losses and the same samples."""
  job, single = train_both_ways(
    tmp_path,
    "--config=experiments/configs/shakespeare_gpt.py:smoke",
    f"--config.dataset=text:{corpus_path}",
    "--config.state_sharding=fsdp",
  )
  assert_same_metrics(records(job), records(single))
  samples = sorted(p.name for p in (job / "samples").iterdir())
  assert samples == sorted(p.name for p in (single / "samples").iterdir())
  for name in samples:  # sampled on every process, written once
    assert (job / "samples" / name).read_text() == (single / "samples" / name).read_text()


@pytest.mark.timeout(300)
def test_two_processes_train_rl_seeds_like_one_process_of_two_devices(tmp_path):
  # Each process trains and evaluates its seed (the runners are split over the 2-device mesh);
  # against one process of 2 devices, the same split: on 1 device the seeds round differently.
  job, single = train_both_ways(
    tmp_path, "--config=experiments/configs/cartpole_ppo.py:smoke", single_devices=2
  )
  assert_same_metrics(records(job), records(single))  # min and max return: the 2 seeds'
  job_final, single_final = (
    json.loads((d / "summary.json").read_text())["final"] for d in (job, single)
  )
  assert without_rate(job_final) == without_rate(single_final)
  assert job_final["env_steps_per_s"] > 0


MLP_LONG = [
  "--config=experiments/configs/mnist_mlp.py:smoke",
  "--config.num_steps=100",
  "--config.checkpoint_every_steps=20",
  "--config.log_every_steps=10",
  "--config.quiet=True",
  FAST_COMPILE,
]


def start_by_hand(workdir, *flags: str) -> list[subprocess.Popen]:
  """Two experiments.train processes joined through the DLJAX_* variables, as on a cluster."""
  return start_joined(
    ["-m", "experiments.train", *flags, f"--workdir={workdir}"]
    + ["--config.distributed=True", "--config.cpu_devices=1"]
  )


def start_joined(python_args: list[str]) -> list[subprocess.Popen]:
  """Two `python *python_args` processes joined through the DLJAX_* variables."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    address = f"127.0.0.1:{s.getsockname()[1]}"
  return [
    subprocess.Popen(
      [sys.executable, *python_args],
      cwd=REPO,
      env=dict(
        os.environ,
        DLJAX_COORDINATOR_ADDRESS=address,
        DLJAX_NUM_PROCESSES="2",
        DLJAX_PROCESS_ID=str(i),
      ),
      stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(2)
  ]


def finish(processes: list[subprocess.Popen], timeout: float) -> list[tuple[int, str]]:
  """Each process's exit status and stderr; kills what is still running after `timeout`."""
  deadline = time.monotonic() + timeout
  results = []
  for p in processes:
    try:
      _, err = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
      p.kill()
      _, err = p.communicate()
      err += "\n(killed: still running at the timeout)"
    results.append((p.returncode, err))
  return results


# Both processes save checkpoints 1 and 2 of an array split over them; process 0 corrupts 2 as
# test_checkpoint_resume does; both then resume from the newest readable checkpoint.
MOVE_ASIDE = """
import pathlib, sys
import jax, jax.numpy as jnp
sys.path.append("tests")
from test_checkpoint_resume import corrupt  # its conftest asks for 2 devices: set 1 after it
from dljax import distributed, parallel
parallel.setup_devices(1, distributed=True)
from dljax.checkpoint import Checkpointer, install
install()  # as the entry points do
directory = pathlib.Path(sys.argv[1])
state = {"w": jax.device_put(jnp.arange(4.0), parallel.batch_sharding(parallel.make_data_mesh(), 4))}
checkpointer = Checkpointer(str(directory), {"test": "move aside"})
checkpointer.save(1, state)
checkpointer.save(2, state, wait=True)
if distributed.is_writer():
  corrupt(directory / "2", "garbage")
distributed.barrier("corrupted")
abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
step, restored = checkpointer.restore_newest(abstract)
print(f"resumed from {step}: {distributed.fetch(restored['w']).tolist()}", file=sys.stderr)
"""


@pytest.mark.timeout(90)
def test_an_unreadable_checkpoint_is_skipped_by_every_process_and_moved_aside_by_one(tmp_path):
  processes = start_joined(["-c", MOVE_ASIDE, str(tmp_path / "checkpoints")])
  results = finish(processes, timeout=60)
  for code, err in results:
    assert code == 0, err[-3000:]
    assert "resumed from 1: [0.0, 1.0, 2.0, 3.0]" in err
  warnings = [[l for l in err.splitlines() if l.startswith("warning:")] for _, err in results]
  assert len(warnings[0]) == 1 and warnings[1] == []  # process 0 moved it, and says so
  assert (
    f"moved it to {tmp_path / 'corrupt_checkpoints' / '2'} and resuming from step 1"
    in (warnings[0][0])
  )
  assert os.listdir(tmp_path / "checkpoints") == ["1"]
  assert os.listdir(tmp_path / "corrupt_checkpoints") == ["2"]


@pytest.mark.timeout(300)
def test_sigterm_to_one_process_stops_the_job_with_one_checkpoint_and_it_resumes(tmp_path):
  job = tmp_path / "job"
  processes = start_by_hand(job, *MLP_LONG)
  try:
    signal_after_checkpoint(processes[1], job, 20, signal.SIGTERM)
  finally:
    results = finish(processes, timeout=60)
  for code, err in results:
    assert code == 143, err[-3000:]
  stopped_at = max(int(p.name) for p in (job / "checkpoints").iterdir())
  assert 20 <= stopped_at < 100 and stopped_at % 10 == 0  # one agreed log step, after the signal
  for _, err in results:
    assert f"SIGTERM received: stopped at step {stopped_at} and saved a checkpoint" in err

  resumed = run_module(
    "experiments.launch", "--processes=2", *MLP_LONG, f"--workdir={job}", timeout=TIMEOUT_S
  )
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  single = run_module(
    "experiments.train",
    *MLP_LONG,
    f"--workdir={tmp_path / 'single'}",
    "--config.cpu_devices=1",
    timeout=TIMEOUT_S,
  )
  assert single.returncode == 0, single.stderr[-3000:]
  # The resumed job trains like one process (the MLP's state replicated over the two).
  assert_same_metrics(records(job), records(tmp_path / "single"))
  assert json.loads((job / "summary.json").read_text())["devices"] == "2 x cpu"


@pytest.mark.timeout(120)
def test_a_killed_process_ends_the_others_in_bounded_time(tmp_path):
  """Usually at once with dljax's one line (a collective with the dead peer fails); when the
  survivor is waiting elsewhere (seen under load: orbax's background commit barrier of the
  previous checkpoint), JAX aborts it at the heartbeat timeout (30 s) with its own message."""
  processes = start_by_hand(tmp_path / "job", *MLP_LONG)
  try:
    deadline = time.monotonic() + 120
    while not any(r["step"] >= 30 for r in records_so_far(tmp_path / "job")):
      assert all(p.poll() is None for p in processes) and time.monotonic() < deadline
      time.sleep(0.02)
    processes[1].kill()
    t0 = time.monotonic()
  finally:
    (code, err), (killed, _) = finish(processes, timeout=60)
  assert killed == -signal.SIGKILL
  assert time.monotonic() - t0 < 30 + 15, err[-3000:]
  if code == -signal.SIGABRT:
    assert "the JAX distributed service detected fatal errors" in err
  else:
    assert code == 75, err[-3000:]
    assert (
      err.strip()
      .splitlines()[-1]
      .startswith(
        "error: process 0 of this 2-process job stops: a collective failed, most likely because "
        "another process died"
      )
    )


def test_the_launcher_exits_with_its_processes_failure(tmp_path):
  out = run_module(
    "experiments.launch",
    "--processes=2",
    "--config=experiments/configs/mnist_mlp.py:smoke",
    f"--workdir={tmp_path / 'job'}",
    "--config.xla_optimization_level=4",  # refused by every process (dljax.parallel)
    timeout=120,
  )
  assert out.returncode == 2
  # The first process to fail reports it; the launcher then stops the other, which may or may not
  # have reached the same check.
  assert out.stderr.count("error: xla_optimization_level=4 is not 0, 1, 2, 3 or -1") in (1, 2)
  assert not (tmp_path / "job").exists()


@pytest.mark.parametrize(
  "flag, message",
  [
    ("--processes=0", "error: --processes=0 must be at least 1"),
    ("--config.no_such_key=1", "error: unknown config key 'no_such_key'"),
  ],
)
def test_the_launcher_refuses_bad_flags_before_starting_anything(tmp_path, flag, message):
  out = run_module(
    "experiments.launch",
    "--processes=2",
    "--config=experiments/configs/mnist_mlp.py:smoke",
    f"--workdir={tmp_path / 'job'}",
    flag,
    timeout=60,
  )
  assert out.returncode == 2
  assert out.stderr.strip().splitlines()[-1].startswith(message)
  assert len(out.stderr.strip().splitlines()) == 1
  assert not (tmp_path / "job").exists()
