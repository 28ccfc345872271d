"""8 simulated devices == 1 device: every supervised family trains to the same losses.

Data parallelism must not change the result (docs/scaling.md): the batch is split over the
devices and the gradients averaged, which is the whole batch's gradient up to float rounding.
A process's device count is fixed when JAX starts, so each count runs in its own process
(tests/family_runs.py), every family in one process to pay the start-up once. ResNet-20 is left
out (its compile alone doubles the cost); test_train_vision checks it on 1 and 2 devices. So is
the MLP: the CNN runs the same task, feed and step. The GPT also runs on 8 devices with its
state split over them (`state_sharding = "fsdp"`).
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO

FAMILIES = ["mnist_cnn:smoke", "mnist_vae:smoke", "mnist_dcgan:smoke"]
LANGUAGE_MODELS = ["shakespeare_gpt:smoke", "shakespeare_lstm:smoke"]


def family_losses(processes: dict[int, subprocess.Popen], timeout: float) -> dict[int, dict]:
  results = {}
  try:
    for devices, proc in processes.items():
      out, err = proc.communicate(timeout=timeout)
      assert proc.returncode == 0, f"{devices} device(s): exit {proc.returncode}\n{err[-3000:]}"
      results[devices] = json.loads(out.strip().splitlines()[-1])
  finally:
    for proc in processes.values():
      if proc.poll() is None:
        proc.kill()
        proc.wait()
  return results


@pytest.mark.timeout(600)
def test_eight_devices_train_every_family_like_one(tmp_path, corpus_path):
  runs = FAMILIES + [f'{name}@dataset="text:{corpus_path}"' for name in LANGUAGE_MODELS]
  gpt = runs[len(FAMILIES)]
  # The GPT with its state split over the 8 devices (FSDP) against the same 1-device run.
  fsdp = f'{gpt},state_sharding="fsdp"'
  processes = {
    devices: subprocess.Popen(
      [sys.executable, "-m", "tests.family_runs", f"--cpu_devices={devices}"]
      + [f"--workdir={tmp_path / str(devices)}", *runs, *([fsdp] if devices == 8 else [])],
      cwd=REPO,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for devices in (1, 8)
  }
  one, eight = family_losses(processes, timeout=500).values()
  for run, run8 in [(run, run) for run in runs] + [(gpt, fsdp)]:
    assert (one[run]["devices"], eight[run8]["devices"]) == ("1 x cpu", "8 x cpu")
    for name, losses in one[run]["train"].items():
      steps, values = np.array(losses).T
      steps8, values8 = np.array(eight[run8]["train"][name]).T
      np.testing.assert_array_equal(steps8, steps)
      assert steps[-1] == 20
      np.testing.assert_allclose(values8, values, rtol=1e-5, err_msg=f"{run8} {name}")
    for name, value in one[run]["final"].items():
      np.testing.assert_allclose(eight[run8]["final"][name], value, rtol=1e-5, err_msg=run8)
