"""Benchmarks: FLOPs counts against XLA's, peak table, throughput rows, the PyTorch suite, the GPU
check's dry run, and the GPT-2 small config's size."""

import json
import os
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO, load_config, run_module, saved_state

from benchmarks import flops, peaks, timing, workloads
from dljax.models.mlp import MLP


@pytest.mark.parametrize("name,batch,low,high", [("cnn", 64, 1.0, 1.05), ("gpt", 12, 1.0, 1.08)])
def test_analytic_flops_match_xla_on_an_unscanned_step(name, batch, low, high):
  # XLA also counts norms, activations, the one-hot embedding and the optimizer: a few per cent.
  workload = workloads.build(name, batch_size=batch)
  xla, complete = workload.xla_flops()
  assert complete
  assert low < xla / workload.analytic_flops() < high


def test_xla_flops_flag_a_scan_as_incomplete():
  step = jax.jit(lambda w: jax.lax.scan(lambda h, _: (jnp.tanh(h @ w), None), w, length=10)[0])
  xla, complete = flops.xla_train_flops(step, jnp.ones((32, 32)))
  assert not complete and xla < 2 * 32**3 * 2  # the body (one 2*32^3 matmul) is counted once
  assert flops.xla_train_flops(jax.jit(lambda w: w @ w), jnp.ones((32, 32)))[1]


def test_a_generative_workload_splits_its_batch_over_the_devices():
  # The VAE's step gathers its batch from the device-resident set and splits it with
  # parallel.split_batch, which needs the mesh current while the step compiles (as in a run).
  per_device = []
  for num_devices in (1, 2):
    workload = workloads.build("vae", num_devices=num_devices)
    workload.compile()
    cost = workload.compiled.cost_analysis()
    per_device.append((cost[0] if isinstance(cost, (list, tuple)) else cost)["flops"])
  assert 0.45 < per_device[1] / per_device[0] < 0.6


def test_resnet20_flops_match_the_published_count():
  from dljax.models import build_model

  # ResNet-20 on CIFAR: 41 M multiply-adds per image forward (He et al. 2016's family, as
  # commonly cited); training is 3x forward less the first layer's input gradient.
  training = flops.analytic_train_flops(
    build_model({"name": "resnet20"}, num_classes=10), 1, (32, 32, 3)
  )
  assert 40.5e6 < training / 6 < 41.5e6


def test_peak_table_answers_for_real_device_kinds():
  assert peaks.table_peak("NVIDIA H100 80GB HBM3", "bf16") == 989.4
  assert peaks.table_peak("NVIDIA H200", "tf32") == 494.7
  assert peaks.table_peak("NVIDIA H100 PCIe", "bf16") == 756.0
  assert peaks.table_peak("NVIDIA A100-SXM4-80GB", "fp32") == 19.5
  assert peaks.table_peak("TPU v5 lite", "bf16") == 197.0
  assert peaks.table_peak("TPU v5p", "bf16") == 459.0
  assert peaks.table_peak("NVIDIA L4", "bf16") is None
  # float32 matmuls run as TF32 on NVIDIA GPUs and as bfloat16 passes on TPUs unless "highest".
  assert peaks.matmul_precision("float32", "gpu", None) == "tf32"
  assert peaks.matmul_precision("float32", "gpu", "highest") == "fp32"
  assert peaks.matmul_precision("float32", "tpu", None) == "bf16"
  assert peaks.matmul_precision("bfloat16", "gpu", "highest") == "bf16"


def test_device_peak_of_a_gpu_or_unknown_device(monkeypatch):
  def lend(kind):
    device = types.SimpleNamespace(platform="gpu", device_kind=kind)
    monkeypatch.setattr(jax, "devices", lambda: [device])

  lend("NVIDIA H200")
  assert peaks.device_peak("bfloat16") == (989.4, "NVIDIA H200 bf16 spec x 1")
  assert peaks.device_peak("float32", num_devices=2) == (2 * 494.7, "NVIDIA H200 tf32 spec x 2")
  lend("NVIDIA L4")
  peak, source = peaks.device_peak("bfloat16")
  assert peak is None and source.startswith("peak unknown for 'NVIDIA L4'")
  assert "--peak_tflops" in source
  assert peaks.device_peak("bfloat16", override=121.0) == (121.0, "--peak_tflops")


def test_unknown_benchmark_model_lists_the_known_ones():
  with pytest.raises(ValueError, match="unknown benchmark model 'vgg'; known .*: .*gpt2.*resnet"):
    workloads.build("vgg")
  out = run_module("benchmarks.compare", "--models=mlp,vgg")
  assert out.returncode == 2 and "Traceback" not in out.stderr
  assert "unknown benchmark model 'vgg'" in out.stderr and "resnet" in out.stderr


def test_interleaved_timing_alternates_contenders():
  calls = []
  times = timing.interleaved({k: lambda n, k=k: calls.append(k) or 0.001 * n for k in "ab"}, 3, 2)
  assert calls == ["a", "b", "a", "b"] and times == {"a": [0.003] * 2, "b": [0.003] * 2}


def test_env_throughput_is_positive():
  from dljax.rl.envs.throughput import env_steps_per_second

  assert env_steps_per_second("CartPole-v1", num_envs=4, num_steps=10) > 0


def test_compare_without_torch_says_how_to_install_it(monkeypatch):
  from benchmarks import compare

  monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
  torch, note = compare.import_torch()
  assert torch is None and "pip install -e '.[bench]'" in note and "torch==2.13.0" in note


def test_compare_races_pytorch_and_writes_json_and_chart(tmp_path):
  pytest.importorskip("torch")
  out = run_module(
    "benchmarks.compare",
    "--models=mlp",
    "--batch_size=8",
    "--steps=1",
    "--repeats=2",
    "--notorch_compile",
    f"--json={tmp_path / 'c.json'}",
  )
  assert out.returncode == 0, out.stderr
  result = json.loads((tmp_path / "c.json").read_text())
  (row,) = result["rows"]
  assert row["model"] == "mlp" and row["batch"] == 8 and row["params"] == 669_706
  assert row["ratio_eager"] == pytest.approx(row["torch_eager_ms"] / row["dljax_ms"])
  assert row["torch_compile_ms"] is None and row["torch_compile_note"] == "--notorch_compile"
  assert row["mfu"] > 0 and result["versions"]["torch"] and result["device"]
  assert (tmp_path / "c.png").stat().st_size > 1000


def test_gpu_check_dry_run_writes_its_reports(tmp_path):
  """Every part at toy size; its bfloat16 GPT run doubles as the mixed-precision training test."""
  env = dict(os.environ, OUT=str(tmp_path / "out"), PYTHON=sys.executable)
  out = subprocess.run(
    ["bash", "benchmarks/gpu_check.sh", "--dry-run", f"--runs_dir={tmp_path}"],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
    check=False,
  )
  assert out.returncode == 0, out.stdout[-3000:]
  report = json.loads((tmp_path / "out" / "gpu_report.json").read_text())
  parts = report["parts"]
  row = parts["throughput"]["result"]["models"]["mlp"]
  assert row["batch"] == 8 and row["unit"] == "examples"
  assert 0 < row["min_ms"] <= row["median_ms"] <= row["max_ms"]
  assert row["examples_per_s"] == pytest.approx(8e3 / row["median_ms"])
  assert row["flops_per_step"] == flops.mlp_flops(MLP(10, (512, 512)), 8, (28, 28, 1))
  assert 0 < row["mfu"] < 1.5  # against a CPU peak measured on a shared host: roughly right
  bf16 = parts["gpt2_small"]["result"]  # the dry run swaps GPT-2 for the small CNN
  assert bf16["dtype"] == "bfloat16" and bf16["models"]["cnn"]["mfu"] > 0
  summary = parts["shakespeare_gpt"]["summary"]
  assert summary["config"]["dtype"] == "bfloat16" and summary["steps"] == 10
  assert summary["final"]["val_loss"] < 4.17  # log(65): better than uniform over the characters
  run = tmp_path / "shakespeare_gpt"
  records = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
  losses = [r["loss"] for r in records if "loss" in r]
  assert losses[-1] < losses[0]
  state = saved_state(run, 10)  # parameters and optimizer moments stay float32 in bfloat16 runs
  assert all(
    x.dtype == np.float32
    for x in jax.tree.leaves([state["params"], state["opt_state"]])
    if np.issubdtype(x.dtype, np.floating)
  )
  markdown = (tmp_path / "out" / "gpu_report.md").read_text()
  assert "## GPT-2 small" in markdown and "nanoGPT: 1.4697" in markdown
  assert (tmp_path / "out" / "gpu_check.log").exists()


def test_gpu_check_refuses_unknown_arguments(tmp_path):
  out = subprocess.run(
    ["bash", "benchmarks/gpu_check.sh", "--fast"],
    cwd=REPO,
    env=dict(os.environ, OUT=str(tmp_path)),
    capture_output=True,
    text=True,
    check=False,
  )
  assert out.returncode == 2 and "unknown argument '--fast'" in out.stderr


def test_gpt2_small_has_124m_parameters_by_nanogpts_formula():
  from dljax.models import build_model
  from dljax.tasks.language_model import language_model_spec
  from dljax.train_state import count_params

  config = load_config("gpt2_small")
  assert config.dtype == "bfloat16" and config.block_size == 1024 and config.vocab_size == 50304
  model = build_model(language_model_spec(config, config.vocab_size))
  tokens = jnp.zeros((1, config.block_size), jnp.int32)
  params = jax.eval_shape(model.init, jax.random.key(0), tokens)["params"]
  assert count_params(params) == 124_373_760  # nanoGPT's formula: test_sequence_models
  # nanoGPT prints the count without the position embedding (its non_embedding count).
  assert round((count_params(params) - params["wpe"].size) / 1e6, 2) == 123.59
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
