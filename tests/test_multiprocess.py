"""One job as two JAX processes on localhost (experiments.launch, gloo collectives) trains like
one process: the same losses, and one set of files written by process 0."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, run_module

TIMEOUT_S = 240


def records(workdir) -> list[dict]:
  with open(workdir / "metrics.jsonl") as f:
    return [json.loads(line) for line in f]


def assert_same_metrics(job: list[dict], single: list[dict]):
  assert [(r["step"], r["split"]) for r in job] == [(r["step"], r["split"]) for r in single]
  for a, b in zip(job, single):
    for name, value in b.items():
      if name not in ("step", "split"):
        np.testing.assert_allclose(a[name], value, rtol=1e-5, err_msg=f"{name} at {b['step']}")


def train_both_ways(tmp_path, *flags: str):
  """The job on 2 processes of 1 device and the same run in 1 process, side by side."""
  job = subprocess.Popen(
    [sys.executable, "-m", "experiments.launch", "--processes=2"]
    + [*flags, f"--workdir={tmp_path / 'job'}"],
    cwd=REPO,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    text=True,
  )
  try:
    single = run_module(
      "experiments.train",
      *flags,
      f"--workdir={tmp_path / 'single'}",
      "--config.cpu_devices=1",
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
def test_two_processes_train_mnist_cnn_like_one(tmp_path):
  job, single = train_both_ways(
    tmp_path, "--config=experiments/configs/mnist_cnn.py:smoke", "--config.log_every_steps=1"
  )
  assert_same_metrics(records(job), records(single))
  assert json.loads((job / "summary.json").read_text())["devices"] == "2 x cpu"
  assert sorted(p.name for p in (job / "checkpoints").iterdir()) == ["10", "20"]


@pytest.mark.timeout(300)
def test_two_processes_train_shakespeare_gpt_like_one(tmp_path, corpus_path):
  job, single = train_both_ways(
    tmp_path,
    "--config=experiments/configs/shakespeare_gpt.py:smoke",
    f"--config.dataset=text:{corpus_path}",
  )
  assert_same_metrics(records(job), records(single))
  samples = sorted(p.name for p in (job / "samples").iterdir())
  assert samples == sorted(p.name for p in (single / "samples").iterdir())
  for name in samples:  # sampled on every process, written once
    assert (job / "samples" / name).read_text() == (single / "samples" / name).read_text()
