"""dljax against PyTorch, side by side: the same training step timed in one process.

  python -m benchmarks.compare --models mlp,cnn,resnet,lstm,gpt [--dtype bfloat16] [--json F]

For each model (benchmarks.workloads: an experiment config's model, optimizer and step on a
fixed synthetic batch) the suite builds the PyTorch twin (benchmarks.torch_models, equal
parameter count asserted) with the same batch, loss, optimizer, schedule and dtype
(benchmarks.torch_step), warms all contenders up (compiling them), then times them interleaved,
dljax, PyTorch eager, torch.compile, dljax, ... (`--repeats` rounds of `--steps` steps each), and
reports the median ms/step with its spread, items/s, PyTorch ms / dljax ms (above 1: dljax is
faster) and the model-FLOPs utilisation of each. `--json F` writes the rows and a bar chart
beside it (F with .png). PyTorch is the optional extra `bench` (`pip install -e '.[bench]'`);
without it only dljax's side is measured.

On CPUs, PyTorch's OpenMP threads spin-wait between operations unless OMP_WAIT_POLICY=PASSIVE;
on a host shared with other processes that spinning made PyTorch's steps up to 13x slower, so the
suite sets PASSIVE unless the variable is already set.
"""

import os
import shutil

from absl import flags

from dljax import cli

_MODELS = flags.DEFINE_list("models", ["mlp", "cnn", "resnet", "lstm", "gpt"], "Models to race.")
_BATCH = flags.DEFINE_integer("batch_size", 0, "Batch size (0: each workload's default).")
_DTYPE = flags.DEFINE_string("dtype", "float32", "Compute dtype: float32 or bfloat16.")
_STEPS = flags.DEFINE_integer(
  "steps", 10, "Timed steps per repetition (rounded up to whole dljax calls of steps_per_call)."
)
_REPEATS = flags.DEFINE_integer("repeats", 5, "Interleaved repetitions per contender.")
_COMPILE = flags.DEFINE_bool("torch_compile", True, "Also time torch.compile'd PyTorch.")
_CPU_DEVICES = flags.DEFINE_integer(
  "cpu_devices", 0, "CPU devices of dljax's mesh (0: each config's cpu_devices)."
)
_PEAK = flags.DEFINE_float(
  "peak_tflops", 0.0, "Device peak TFLOP/s for MFU (0: the table, or a timed matmul on CPU)."
)
_JSON = flags.DEFINE_string("json", "", "Write the results to this JSON file (and a .png chart).")

INSTALL_TORCH = "pip install -e '.[bench]' (the optional extra 'bench': torch==2.13.0)"
CONTENDERS = ("dljax", "torch_eager", "torch_compile")


def import_torch():
  """PyTorch, or None and the reason the PyTorch columns are missing."""
  try:
    import torch
  except ImportError:
    return None, f"PyTorch is not installed; for the PyTorch columns: {INSTALL_TORCH}"
  return torch, ""


def compile_unavailable(device: str) -> str:
  """Why torch.compile cannot work here ('' if it may): Inductor compiles C++ for CPUs."""
  if device == "cpu" and not (shutil.which("g++") or shutil.which("clang++")):
    return "torch.compile needs a C++ compiler (g++ or clang++) for CPU code; none is installed"
  return ""


def race(name: str, torch_device: str | None, compile_note: str) -> dict:
  """Builds, warms up and times `name` with every available contender; returns its row."""
  from benchmarks import timing, workloads
  from benchmarks.flops import flops_figures

  workload = workloads.build(name, _BATCH.value, _DTYPE.value, _CPU_DEVICES.value)
  workload.compile()
  runners = {"dljax": workload.seconds_per_step}
  row = {
    "model": name,
    "batch": workload.batch_size,
    "unit": workload.unit,
    "steps_per_call": workload.steps_per_call,
    "dljax_compile_s": workload.compile_s,
  }
  trainers = {}
  if torch_device:
    from benchmarks.torch_models import trainable_params
    from benchmarks.torch_step import TorchTrainer
    from dljax.train_state import count_params

    trainers["torch_eager"] = TorchTrainer(workload, torch_device, compile_model=False)
    params = count_params(workload.state.params)
    torch_params = trainable_params(trainers["torch_eager"].module)
    assert torch_params == params, f"{name}: PyTorch has {torch_params} parameters, dljax {params}"
    row["params"] = params
    if not compile_note:
      trainers["torch_compile"] = TorchTrainer(workload, torch_device, compile_model=True)
    for key, trainer in list(trainers.items()):
      try:
        trainer.warm_up()
      except Exception as e:  # torch.compile's failures are many and version-specific
        if key == "torch_eager":
          raise
        compile_note = f"torch.compile failed: {type(e).__name__}: {str(e).splitlines()[0]}"
        del trainers[key]
        continue
      row[f"{key}_compile_s"] = trainer.compile_s
      runners[key] = trainer.seconds_per_step
  steps = -(-_STEPS.value // workload.steps_per_call) * workload.steps_per_call
  times = timing.interleaved(runners, steps, _REPEATS.value)
  for key in CONTENDERS:
    s = timing.summary(times[key]) if key in times else None
    row[f"{key}_ms"] = s["median_ms"] if s else None
    row[f"{key}_ms_range"] = [s["min_ms"], s["max_ms"]] if s else None
    row[f"{key}_{workload.unit}_per_s"] = (
      workload.items_per_step / s["median_ms"] * 1e3 if s else None
    )
  row.update(flops_figures(workload, row["dljax_ms"] / 1e3, _DTYPE.value, _PEAK.value))
  for key in ("torch_eager", "torch_compile"):
    ms = row[f"{key}_ms"]
    row[f"ratio_{key.removeprefix('torch_')}"] = ms / row["dljax_ms"] if ms else None
    row[f"mfu_{key}"] = row["mfu"] * row["dljax_ms"] / ms if ms and row["mfu"] else None
  if torch_device:
    row["torch_compile_note"] = compile_note
  return row


def _ms(row: dict, key: str) -> str:
  ms, span = row[f"{key}_ms"], row[f"{key}_ms_range"]
  if ms is None:
    return f"{'n/a':>15}"
  return f"{ms:9.2f} ±{50 * (span[1] - span[0]) / ms:3.0f}%"


def _num(value, fmt: str, width: int) -> str:
  return format(value, fmt) if value is not None else f"{'n/a':>{width}}"


def format_row(r: dict) -> str:
  mfus = " ".join(
    _num(r[k] and 100 * r[k], "5.1f", 5) for k in ("mfu", "mfu_torch_eager", "mfu_torch_compile")
  )
  return (
    f"{r['model']:7} {r['batch']:5d} {_ms(r, 'dljax')} {_ms(r, 'torch_eager')} "
    f"{_ms(r, 'torch_compile')} {_num(r['ratio_eager'], '7.2f', 7)} "
    f"{_num(r['ratio_compile'], '7.2f', 7)}  {mfus}"
  )


HEADER = (
  f"{'model':7} {'batch':>5} {'dljax ms/step':>15} {'eager ms/step':>15} "
  f"{'compiled ms':>15} {'eager/':>7} {'compil/':>7}  {'MFU % dljax/eager/compiled':>17}"
)


def main(argv):
  del argv
  from benchmarks import workloads

  workloads.check_names(_MODELS.value, workloads.SPECS)  # ppo has no PyTorch twin
  os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before PyTorch starts its OpenMP threads
  from dljax import parallel

  parallel.setup_devices()
  import jax

  from benchmarks import peaks, report

  torch, torch_note = import_torch()
  torch_device = compile_note = None
  if torch is not None:
    torch_device = "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"
    compile_note = compile_unavailable(torch_device) if _COMPILE.value else "--notorch_compile"
  peak, source = peaks.device_peak(_DTYPE.value, _PEAK.value)
  result = {
    "device": report.device(),
    "dtype": _DTYPE.value,
    "versions": report.versions(),
    "peak_tflops_per_device": peak,
    "peak_source": source,
    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    "torch_threads": torch.get_num_threads() if torch else None,
    "rows": [],
  }
  print(
    f"{result['device']}, {_DTYPE.value}; jax {result['versions']['jax']}, torch "
    f"{result['versions']['torch']} ({torch_device or 'absent'}); peak: "
    + (f"{peak:.3g} TFLOP/s ({source})" if peak else source)
  )
  if torch_note:
    print(torch_note)
  print(HEADER)
  from dljax.errors import DljaxError

  for name in _MODELS.value:
    try:
      row = race(name, torch_device, compile_note or "")
    except DljaxError as e:  # e.g. a model without a bfloat16 variant
      print(f"{name:7} skipped: {e}")
      continue
    result["rows"].append(row)
    print(format_row(row), flush=True)
  notes = {r.get("torch_compile_note") for r in result["rows"]} - {None, ""}
  for note in sorted(notes):
    print(f"compiled column n/a: {note}")
  print(
    "eager/, compil/: PyTorch ms / dljax ms (above 1: dljax faster); ± half the min-max "
    f"range of {_REPEATS.value} interleaved repetitions; MFU from the model's analytic FLOPs."
  )
  if _JSON.value:
    report.write_json(_JSON.value, result)
    if torch is not None and result["rows"]:
      chart = os.path.splitext(_JSON.value)[0] + ".png"
      report.ratio_chart(result["rows"], f"{result['device']}, {_DTYPE.value}", chart)


if __name__ == "__main__":
  cli.run_main(main)
