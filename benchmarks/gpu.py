"""The GPU check: what dljax does on a freshly lent accelerator, in one budgeted run.

  bash benchmarks/gpu_check.sh             # installs, then runs this module (see the script)
  python -m benchmarks.gpu --out DIR [--budget_s 420] [--dry_run]

Parts, each a subprocess with its own time budget (a part that would overrun is stopped or
skipped, and the report says so):
  1. the device JAX sees, versions and nvidia-smi's view of the GPU, with
  2. the throughput table at GPU sizes (benchmarks.throughput: mlp, cnn, resnet, lstm, gpt);
  3. a GPT-2 small (124 M) bfloat16 train step with its MFU (experiments/configs/gpt2_small.py);
  4. shakespeare_gpt with nanoGPT's GPU settings in bfloat16, trained to its final val loss
     (nanoGPT publishes 1.4697 for the same run), on the corpus at CORPUS,
     ../shared/data/tinyshakespeare.txt or shared/data/tinyshakespeare.txt, else TFDS.
Writes DIR/gpu_report.json and DIR/gpu_report.md. `--dry_run` runs every part at toy sizes on
whatever device JAX has (seconds on a CPU), for the test suite.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from absl import flags

from dljax import cli
from dljax.errors import DljaxError

_OUT = flags.DEFINE_string("out", None, "Folder for gpu_report.json and gpu_report.md.")
_BUDGET = flags.DEFINE_integer("budget_s", 420, "Seconds for all parts together.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Toy sizes, on any device (tests).")
_RUNS = flags.DEFINE_string(
  "runs_dir", "", "Keep the parts' outputs (logs, the training run) here ('': a removed temp dir)."
)
flags.mark_flag_as_required("out")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NANOGPT_VAL_LOSS = 1.4697  # nanoGPT README, shakespeare_char on one A100 (5000 iterations)
CORPUS_CANDIDATES = ("../shared/data/tinyshakespeare.txt", "shared/data/tinyshakespeare.txt")

# Seconds per part on an H100/H200 (their share of an 8-minute run after a ~1-minute install):
# measured parts stop at their budget; the training run gets whatever is left.
THROUGHPUT_S = 110
GPT2_S = 90
MIN_TRAIN_S = 60  # below this the training run is skipped, not started
MIN_PART_S = 10  # likewise for the other parts
REPORT_S = 5


class Clock:
  def __init__(self, budget_s: float):
    self.deadline = time.monotonic() + budget_s

  def left(self) -> float:
    return self.deadline - time.monotonic()

  def budget(self, cap: float, minimum: float) -> float | None:
    """Seconds for the next part (at most `cap`), None if fewer than `minimum` are left."""
    left = min(cap, self.left() - REPORT_S)
    return left if left >= minimum else None


def skipped(clock: Clock, minimum: float) -> dict:
  return {"skipped": f"{clock.left():.0f} s were left of the budget; the part needs {minimum} s"}


def run_part(args: list[str], timeout_s: float, log_path: str) -> dict:
  """Runs `python -m args...` from the repo root for at most `timeout_s` seconds.

  At the limit it is sent SIGTERM (a training run then saves a checkpoint and stops), then killed
  20 s later. Returns its exit code, wall time and whether the limit stopped it.
  """
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  t0 = time.monotonic()
  with open(log_path, "w") as log:
    proc = subprocess.Popen(
      [sys.executable, "-m", *args], cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env
    )
    stopped = False
    try:
      proc.wait(timeout=max(timeout_s, 1))
    except subprocess.TimeoutExpired:
      stopped = True
      proc.terminate()
      try:
        proc.wait(timeout=20)
      except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
  with open(log_path) as f:
    tail = f.read()[-2000:]
  return {
    "returncode": proc.returncode,
    "seconds": round(time.monotonic() - t0, 1),
    "stopped_by_budget": stopped,
    "log_tail": tail,
  }


def nvidia_smi() -> str | None:
  if not shutil.which("nvidia-smi"):
    return None
  query = "name,memory.total,driver_version,clocks.max.sm,power.limit"
  out = subprocess.run(
    ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
    capture_output=True,
    text=True,
    timeout=30,
    check=False,
  )
  return out.stdout.strip() or out.stderr.strip()


def find_corpus() -> str:
  """`text:PATH` of the tiny-shakespeare corpus if a copy is at hand, else TFDS's dataset."""
  for path in (os.environ.get("CORPUS", ""), *CORPUS_CANDIDATES):
    if path and os.path.exists(os.path.join(REPO, path)):
      return f"text:{os.path.abspath(os.path.join(REPO, path))}"
  return "tiny_shakespeare"


def read_json(path: str):
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def last_eval(metrics_path: str) -> dict | None:
  """The last evaluation record of a run's metrics.jsonl (a stopped run has no summary.json)."""
  if not os.path.exists(metrics_path):
    return None
  with open(metrics_path) as f:
    evals = [r for r in map(json.loads, f) if r.get("split") == "eval"]
  return evals[-1] if evals else None


def part_throughput(clock: Clock, scratch: str, dry_run: bool) -> dict:
  path = os.path.join(scratch, "throughput.json")
  sizes = (
    ["--models=mlp", "--batch_size=8", "--steps=1", "--repeats=1"]
    if dry_run
    else ["--models=mlp,cnn,resnet,lstm,gpt", "--steps=20", "--repeats=3"]
  )
  budget = clock.budget(THROUGHPUT_S, MIN_PART_S)
  if budget is None:
    return skipped(clock, MIN_PART_S)
  run = run_part(
    ["benchmarks.throughput", *sizes, f"--json={path}"], budget, os.path.join(scratch, "tp.log")
  )
  return {**run, "result": read_json(path)}


def part_gpt2(clock: Clock, scratch: str, dry_run: bool) -> dict:
  path = os.path.join(scratch, "gpt2.json")
  # The dry run swaps the 124 M GPT for the small CNN: the same bfloat16 code path, in seconds.
  sizes = (
    ["--models=cnn", "--batch_size=8", "--steps=1", "--repeats=1"]
    if dry_run
    else ["--models=gpt2", "--steps=10", "--repeats=3"]
  )
  budget = clock.budget(GPT2_S, MIN_PART_S)
  if budget is None:
    return skipped(clock, MIN_PART_S)
  run = run_part(
    ["benchmarks.throughput", *sizes, "--dtype=bfloat16", f"--json={path}"],
    budget,
    os.path.join(scratch, "gpt2.log"),
  )
  return {**run, "result": read_json(path)}


def part_shakespeare(clock: Clock, scratch: str, dry_run: bool) -> dict:
  budget = clock.budget(float("inf"), MIN_PART_S if dry_run else MIN_TRAIN_S)
  if budget is None:
    return skipped(clock, MIN_PART_S if dry_run else MIN_TRAIN_S)
  workdir = os.path.join(scratch, "shakespeare_gpt")
  dataset = find_corpus()
  config = "experiments/configs/shakespeare_gpt.py" + (":smoke" if dry_run else "")
  args = [
    "experiments.train",
    f"--config={config}",
    f"--workdir={workdir}",
    f"--config.dataset={dataset}",
    "--config.dtype=bfloat16",
    "--config.quiet=True",
    "--config.sample_tokens=0",  # sampling at every evaluation costs time, not loss
  ]
  if dataset == "tiny_shakespeare":
    args.append("--config.tfds_download=True")
  if dry_run:  # two logged losses (steps 5 and 10), one evaluation, one checkpoint
    args += [
      "--config.num_steps=10",
      "--config.log_every_steps=5",
      "--config.eval_every_steps=10",
      "--config.checkpoint_every_steps=10",
    ]
  else:  # one checkpoint, at the end: periodic saves cost time, not loss
    args.append("--config.checkpoint_every_steps=5000")
  run = run_part(args, budget, os.path.join(scratch, "train.log"))
  summary = read_json(os.path.join(workdir, "summary.json"))
  return {
    **run,
    "dataset": dataset,
    "summary": summary,
    "last_eval": last_eval(os.path.join(workdir, "metrics.jsonl")),
    "nanogpt_val_loss": NANOGPT_VAL_LOSS,
  }


def markdown(report: dict) -> str:
  device = report["device"]
  lines = [
    f"# dljax GPU check ({report['date']})",
    "",
    f"- device: {device.get('jax_device')}; nvidia-smi: {device.get('nvidia_smi')}",
    f"- versions: {device.get('versions')}",
    f"- budget {report['budget_s']} s, used {report['seconds']:.0f} s"
    + (" (dry run: toy sizes)" if report["dry_run"] else ""),
    "",
  ]
  for name, title in (
    ("throughput", "Throughput (float32; TF32 matmuls on NVIDIA)"),
    ("gpt2_small", "GPT-2 small (124 M), bfloat16 train step"),
  ):
    part = report["parts"].get(name, {})
    lines += [f"## {title}", ""]
    rows = ((part.get("result") or {}).get("models") or {}).values()
    if rows:
      lines += [
        "| model | batch | ms/step | items/s | GFLOP/step | XLA GFLOP | MFU | peak |",
        "|---|---|---|---|---|---|---|---|",
      ]
      for r in rows:
        mfu = f"{100 * r['mfu']:.1f} %" if r.get("mfu") is not None else "n/a"
        xla = f"{r['xla_flops_per_step'] / 1e9:.1f}" + ("" if r["xla_flops_complete"] else "*")
        flops = f"{r['flops_per_step'] / 1e9:.1f}" if r.get("flops_per_step") else "n/a"
        lines.append(
          f"| {r['model']} | {r['batch']} | {r['median_ms']:.2f} | "
          f"{r[r['unit'] + '_per_s']:.4g} {r['unit']} | {flops} | {xla} | {mfu} | "
          f"{r['peak_source']} |"
        )
    lines += ["", note(part), ""]
  part = report["parts"].get("shakespeare_gpt", {})
  lines += ["## shakespeare_gpt, nanoGPT's GPU settings, bfloat16", ""]
  final = (part.get("summary") or {}).get("final") or {}
  last = part.get("last_eval") or {}
  if final:
    s = part["summary"]
    lines.append(
      f"val loss {final['val_loss']:.4f} after {s['steps']} steps (nanoGPT: "
      f"{NANOGPT_VAL_LOSS}); wall {s['wall_time_s']:.0f} s, compile "
      f"{s['compile_time_s']:.0f} s, {s['step_time_ms']:.1f} ms/step; data "
      f"{part['dataset']}"
    )
  elif last:
    lines.append(
      f"stopped by the budget: val loss {last['val_loss']:.4f} at step {last['step']} "
      f"of 5000 (nanoGPT after 5000: {NANOGPT_VAL_LOSS}); data {part['dataset']}"
    )
  lines += ["", note(part), ""]
  return "\n".join(lines)


def note(part: dict) -> str:
  if "skipped" in part:
    return f"Skipped: {part['skipped']}."
  if part.get("stopped_by_budget"):
    return f"Stopped by its budget after {part['seconds']} s; what it had measured is above."
  if part.get("returncode"):
    tail = part.get("log_tail", "").strip().splitlines()[-1:] or ["(no output)"]
    return f"Failed (exit {part['returncode']}): {tail[0]}"
  return f"Took {part.get('seconds', 0):.0f} s."


def main(argv):
  del argv
  t0 = time.monotonic()
  clock = Clock(_BUDGET.value)
  os.makedirs(_OUT.value, exist_ok=True)
  if not os.access(_OUT.value, os.W_OK):
    raise DljaxError(f"--out {_OUT.value} is not writable; pass a folder you can write to")
  scratch = _RUNS.value or tempfile.mkdtemp(prefix="dljax_gpu_")
  os.makedirs(scratch, exist_ok=True)
  report = {
    "date": time.strftime("%Y-%m-%d %H:%M"),
    "dry_run": _DRY_RUN.value,
    "budget_s": _BUDGET.value,
    "parts": {},
  }
  for name, part in (
    ("throughput", part_throughput),
    ("gpt2_small", part_gpt2),
    ("shakespeare_gpt", part_shakespeare),
  ):
    result = part(clock, scratch, _DRY_RUN.value)
    report["parts"][name] = result
    print(f"{name}: {note(result)}", flush=True)
  measured = report["parts"]["throughput"].get("result") or {}
  report["device"] = {
    "jax_device": measured.get("device"),
    "versions": measured.get("versions"),
    "nvidia_smi": nvidia_smi(),
  }
  report["seconds"] = time.monotonic() - t0
  from benchmarks.report import write_json

  write_json(os.path.join(_OUT.value, "gpu_report.json"), report)
  with open(os.path.join(_OUT.value, "gpu_report.md"), "w") as f:
    f.write(markdown(report))
  print(markdown(report))
  if not _RUNS.value:
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
  cli.run_main(main)
