"""Measures every result the README states, writes them to results/results.json and regenerates
the README's results table (and the result figures on the docs pages) from that file.

  python -m benchmarks.reproduce [--rows NAME,...] [--seeds N] [--races] [--out results/]
  python -m benchmarks.reproduce --table_only   # rewrite README and pages from results.json

A row (`ROWS`) is a config, its variant, the seeds it is run with and how its final metrics are
shown. Each seed is one command as a user types it, `python -m experiments.train --config
experiments/configs/NAME.py[:VARIANT] --workdir DIR --config.seed=S [flags]`, timed as a whole
process (wall and CPU time); its record keeps every final metric of its summary.json, its step and
compile times and the machine (CPU model, cores, jax version, load average before and after).
`--rows` reruns only those rows and merges them into an existing results.json, keeping the others;
a row's race (`benchmarks.race`, back to back with its peer) runs with `--races` (without it,
the row keeps the race it had). `python -m benchmarks.samplers` adds the scores of the denoising
rows' other samplers on their runs (a row's `samplers`, kept in the same way).

The README's table sits between `<!-- results table -->` and `<!-- /results table -->`; a result
quoted on a docs page is written `<!-- result ROW.FIGURE -->VALUE<!-- /result -->` and filled from
the row's figures (e.g. `cartpole_ppo.min_return`). `tests/test_reproduce.py` checks that both are
exactly what this module writes from the committed results.json.
"""

import dataclasses
import datetime
import glob
import importlib.metadata
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time

from absl import flags

from benchmarks.race import RACES
from dljax import cli
from dljax.errors import DljaxError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = "text:../shared/data/tinyshakespeare.txt"  # offline corpus, relative to the repo root
TABLE_START, TABLE_END = "<!-- results table -->", "<!-- /results table -->"
PAGE_RESULT = re.compile(r"<!-- result ([\w.]+) -->(.*?)<!-- /result -->")


@dataclasses.dataclass(frozen=True)
class Metric:
  """One final metric shown across a row's seeds: `label` (where "{KEY}" stands for the run's
  config value KEY) then the values `fmt`-formatted (after `scale`), seed after seed."""

  key: str  # key in summary.json's `final`
  label: str
  fmt: str = "{:.3f}"
  scale: float = 1.0
  unit: str = ""


@dataclasses.dataclass(frozen=True)
class Returns:
  """An RL row's distribution of per-seed returns over all its seed sets: how many of them reach
  `threshold` (if given) and their min / median / max."""

  threshold: float | None = None


@dataclasses.dataclass(frozen=True)
class Row:
  config: str  # experiments/configs/NAME.py[:VARIANT]
  what: str  # the table's "what" column: what the config does
  show: tuple = ()  # Metric / Returns, in the order the result column shows them
  seeds: tuple[int, ...] = (0,)  # --config.seed of each run (an RL run vmaps several seeds)
  flags: tuple[str, ...] = ()  # more flags; "{run:ROW}" stands for ROW's first seed's workdir
  race: str = ""  # benchmarks.race's race for this row ("" = none)
  peer: str = ""  # the race's peer, as the table names it
  step: str = ""  # what the loop's step is when not one update (RL: a chunk of updates)
  race_pairs: int = 2
  not_run: str = ""  # why this machine cannot run it (then the row is never run)
  # "SAMPLER:STEPS" that benchmarks.samplers compares on the row's run (diffusion, flow matching)
  samplers: tuple[str, ...] = ()


# What a generative row shows of its 10,000 samples (dljax.tasks.fid): FID, its floor, and the
# smallest class share among the classifier's predictions (mode collapse as a number).
GENERATED_SAMPLES = (
  Metric("fid_mnist_cnn", "fid_mnist_cnn", "{:.1f}"),
  Metric("fid_mnist_cnn_real_vs_real", "real-vs-real floor", "{:.1f}"),
  Metric("min_class_share", "smallest class", "{:.1f}", 100, " %"),
  Metric("max_class_share", "largest class", "{:.1f}", 100, " %"),
)

# What a VAE row shows of its test digits: the ELBO and the importance-weighted bound (nats).
VAE_BOUNDS = (
  Metric("neg_elbo", "test neg_elbo", "{:.2f}"),
  Metric("nll_iw", "nll_iw (k={iw_samples})", "{:.2f}", unit=" nats"),
)

# Rows in README order. A new row is one entry; a `{run:ROW}` flag runs ROW first when its
# workdir has no summary.json (mnist_cnn's classifier gives the generative rows their FID).
ROWS = {
  "mnist_cnn": Row(
    "mnist_cnn.py",
    "CNN on `mnist5k`, 24 epochs, batch 64, 2 CPU devices",
    (Metric("test_accuracy", "test accuracy", "{:.1f}", 100, " %"),),
    seeds=(0, 1, 2),
  ),
  "mnist_mlp": Row(
    "mnist_mlp.py",
    "MLP 512-512 on `mnist5k`, 30 epochs",
    (Metric("test_accuracy", "test accuracy", "{:.1f}", 100, " %"),),
  ),
  "cifar10_resnet": Row(
    "cifar10_resnet.py",
    "ResNet-20 on TFDS CIFAR-10, crop+flip, SGD",
    not_run="CIFAR-10 needs preparing with TFDS, and 90 epochs are ~4 h of this CPU",
  ),
  "shakespeare_gpt_cpu": Row(
    "shakespeare_gpt.py:cpu",
    "nanoGPT's CPU shape (4 layers, 4 heads, 128 dims, block 64), batch 12, 1,400 steps",
    (Metric("val_loss", "val loss"),),
    flags=(f"--config.dataset={CORPUS}",),
    race="shakespeare_gpt",
    peer="nanoGPT",
  ),
  "shakespeare_lstm_cpu": Row(
    "shakespeare_lstm.py:cpu",
    "2-layer LSTM, 256 units, block 64, batch 32, 500 steps",
    (Metric("val_loss", "val loss"),),
    flags=(f"--config.dataset={CORPUS}",),
  ),
  "shakespeare_gpt": Row(
    "shakespeare_gpt.py",
    "nanoGPT's GPU settings (6x6x384, block 256)",
    not_run="needs an accelerator",
  ),
  "cartpole_ppo": Row(
    "cartpole_ppo.py",
    "PPO, 399,360 env steps per seed, 2 epochs of 8 minibatches, lr 5e-4, 2 CPU devices; 8 seeds "
    "vmapped per run, runs at `--config.seed` 0, 1, 2",
    (Returns(475),),
    seeds=(0, 1, 2),
    step="chunk",
    race="cartpole_ppo",
    peer="PureJaxRL",
    race_pairs=3,
  ),
  "pendulum_ppo": Row(
    "pendulum_ppo.py",
    "PPO (Gaussian), 1e6 env steps per seed; 8 seeds vmapped per run, "
    "runs at `--config.seed` 0, 1, 2",
    (Returns(),),
    seeds=(0, 1, 2),
    step="chunk",
  ),
  "cartpole_dqn": Row(
    "cartpole_dqn.py",
    "double DQN, 5-step returns, Polyak target, 3e5 env steps per seed; 8 seeds vmapped per run, "
    "runs at `--config.seed` 0, 1, 2",
    (Returns(475),),
    seeds=(0, 1, 2),
    step="chunk",
  ),
  "mnist_vae": Row(
    "mnist_vae.py",
    "MLP VAE (784-500-20) on binarized `mnist5k`, 80 epochs",
    (
      *VAE_BOUNDS,
      Metric("fid_mnist_cnn", "fid_mnist_cnn of samples", "{:.1f}"),
      Metric("fid_mnist_cnn_real_vs_real", "real-vs-real floor", "{:.1f}"),
    ),
    flags=("--config.fid_classifier_workdir={run:mnist_cnn}",),
  ),
  "mnist_vae_conv": Row(
    "mnist_vae.py:conv",
    "convolutional VAE",
    (*VAE_BOUNDS,),
    flags=("--config.fid_classifier_workdir=",),
  ),
  "mnist_vae_latent2": Row(
    "mnist_vae.py:latent2",
    "2-D latent space: manifold and code-scatter figures",
    (*VAE_BOUNDS,),
    flags=("--config.fid_classifier_workdir=",),
  ),
  "mnist_vae_mnist": Row(
    "mnist_vae.py:mnist",
    "the MLP VAE on binarized full MNIST (`python -m dljax.data.fetch mnist`), 20 epochs",
    (
      *VAE_BOUNDS,
      *GENERATED_SAMPLES,
    ),
    flags=("--config.fid_classifier_workdir={run:mnist_cnn}",),
  ),
  "mnist_dcgan": Row(
    "mnist_dcgan.py",
    "DCGAN on full MNIST (`python -m dljax.data.fetch mnist`), G 256-128-64 / D 64-128, 15,000 steps, "
    "D then G on one noise batch in one jitted step, Adam 2e-4 / 0.5 each",
    (
      *GENERATED_SAMPLES,
      Metric("fid_mnist_cnn_running_averages", "fid_mnist_cnn with running averages", "{:.1f}"),
    ),
    flags=("--config.fid_classifier_workdir={run:mnist_cnn}",),
  ),
  "fashion_cnn": Row(
    "fashion_cnn.py",
    "`mnist_cnn`'s CNN on full Fashion-MNIST (`python -m dljax.data.fetch fashion_mnist`), 5 "
    "epochs, flips: the classifier of FID on Fashion-MNIST samples",
    (Metric("test_accuracy", "test accuracy", "{:.1f}", 100, " %"),),
  ),
  "mnist_ddpm": Row(
    "mnist_ddpm.py",
    "DDPM (cosine schedule, noise prediction) on full MNIST, (16, 32, 32) U-Net with an EMA "
    "network, 5,000 steps; 10,000 samples by ancestral sampling, 25 steps",
    (
      *GENERATED_SAMPLES,
      Metric("neg_elbo_nats", "-ELBO of eight-bit digits", "{:.1f}", unit=" nats"),
      Metric("sample_seconds_per_1000", "sampling", "{:.1f}", unit=" s per thousand"),
    ),
    flags=("--config.fid_classifier_workdir={run:mnist_cnn}",),
    samplers=(
      "ddim:10",
      "ddim:25",
      "ddim:50",
      "ddim:250",
      "ddpm:25",
      "ddpm:50",
      "ddpm:100",
      "ddpm:250",
    ),
  ),
  "mnist_flow": Row(
    "mnist_flow.py",
    "flow matching (rectified flow) on full MNIST, the same U-Net and EMA, 5,000 steps; 10,000 "
    "samples by Heun, 12 steps (24 network calls, as the DDPM's 25 steps)",
    (
      *GENERATED_SAMPLES,
      Metric("sample_seconds_per_1000", "sampling", "{:.1f}", unit=" s per thousand"),
    ),
    flags=("--config.fid_classifier_workdir={run:mnist_cnn}",),
    samplers=("euler:10", "euler:24", "euler:50", "heun:5", "heun:12", "heun:25"),
  ),
}

_ROWS = flags.DEFINE_list("rows", [], "Rows to run (default: all that this machine can run).")
_SEEDS = flags.DEFINE_integer("seeds", 0, "Run only each row's first N seeds (0: all).")
_OUT = flags.DEFINE_string("out", os.path.join(REPO, "results"), "Where results.json goes.")
_RUNS = flags.DEFINE_string(
  "runs", os.path.join(REPO, "runs", "reproduce"), "Where the runs' workdirs go (rerun afresh)."
)
_RACES = flags.DEFINE_bool("races", False, "Also run each row's race against its peer.")
_TABLE_ONLY = flags.DEFINE_bool(
  "table_only", False, "Run nothing: rewrite README's table and the pages from results.json."
)
_README = flags.DEFINE_string("readme", os.path.join(REPO, "README.md"), "README to rewrite.")


def machine() -> dict:
  """The machine a record was measured on."""
  model = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    pass
  return {
    "cpu": model,
    "cores": os.cpu_count(),
    "jax": importlib.metadata.version("jax"),
    "python": platform.python_version(),
  }


def _load() -> list[float]:
  return [round(x, 2) for x in os.getloadavg()]


def workdir(runs: str, name: str, seed: int) -> str:
  return os.path.join(runs, f"{name}-seed{seed}")


def command(name: str, seed: int, runs: str) -> list[str]:
  """Row `name`'s command for `seed`, as a user types it (the interpreter is this one)."""
  row = ROWS[name]
  extra = [
    re.sub(r"\{run:(\w+)\}", lambda m: workdir(runs, m[1], ROWS[m[1]].seeds[0]), f)
    for f in row.flags
  ]
  return [
    sys.executable,
    "-m",
    "experiments.train",
    "--config",
    f"experiments/configs/{row.config}",
    "--workdir",
    workdir(runs, name, seed),
    f"--config.seed={seed}",
    *extra,
  ]


def run_seed(name: str, seed: int, runs: str) -> dict:
  """Runs row `name` at `seed` afresh (an old workdir is removed: a resumed run would time only
  what was left); its record."""
  argv = command(name, seed, runs)
  shutil.rmtree(argv[argv.index("--workdir") + 1], ignore_errors=True)
  load_before = _load()
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  start = time.perf_counter()
  proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
  wall = time.perf_counter() - start
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  if proc.returncode:
    raise DljaxError(f"{' '.join(argv)} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
  with open(os.path.join(workdir(runs, name, seed), "summary.json")) as f:
    summary = json.load(f)
  config, _, variant = ROWS[name].config.partition(":")
  return {
    "config": config.removesuffix(".py"),
    "variant": variant,
    "seed": seed,
    "command": " ".join(
      ["python", *(os.path.relpath(a, REPO) if a.startswith(REPO) else a for a in argv[1:])]
    ),
    "final": summary["final"],
    "settings": summary["config"],
    "wall_s": round(wall, 2),
    "cpu_s": round(
      after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2
    ),  # user + sys of the whole command
    "step_time_ms": summary["step_time_ms"],
    "compile_time_s": summary["compile_time_s"],
    "steps": summary["steps"],
    "devices": summary.get("devices", ""),
    "machine": machine(),
    "load_before": load_before,
    "load_after": _load(),
    "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
  }


def run_race(race: str, pairs: int, out: str) -> dict:
  """`python -m benchmarks.race --race RACE --pairs N`, as a user types it; its result."""
  path = os.path.join(out, f"race_{race}.json")
  argv = [sys.executable, "-m", "benchmarks.race", f"--race={race}", f"--pairs={pairs}"]
  proc = subprocess.run(
    [*argv, f"--race_json={path}"], cwd=REPO, capture_output=True, text=True, check=False
  )
  if proc.returncode:
    raise DljaxError(f"{' '.join(argv)} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
  with open(path) as f:
    result = json.load(f)
  os.remove(path)
  result["command"] = " ".join(["python", *argv[1:]])
  result["date"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
  return result


def figures(name: str, records: list[dict], race: dict | None) -> dict:
  """The figures row `name`'s table cells and the pages show, from its records (every number
  there is one of these, rounded as shown)."""
  row = ROWS[name]
  out = {"seeds": [r["seed"] for r in records], "labels": {}}
  for show in row.show:
    if isinstance(show, Metric):
      out[show.key] = [r["final"].get(show.key) for r in records]
      out["labels"][show.key] = show.label.format(**records[0]["settings"])
    else:
      returns = [x for r in records for x in r["final"]["seed_returns"]]
      out["num_seed_returns"] = len(returns)
      out["min_return"] = min(returns)
      out["median_return"] = statistics.median(returns)
      out["max_return"] = max(returns)
      if show.threshold is not None:
        out["threshold"] = show.threshold
        out["seeds_at_threshold"] = sum(x >= show.threshold for x in returns)
  out["wall_s"] = [r["wall_s"] for r in records]
  out["cpu_s"] = [r["cpu_s"] for r in records]
  out["step_time_ms"] = statistics.median(r["step_time_ms"] for r in records)
  out["load_before"] = [r["load_before"][0] for r in records]
  if race:
    out["race_ratios"] = [p["ratio"] for p in race["pairs"]]
    out["race_dljax_wall_s"] = [p["dljax_wall_s"] for p in race["pairs"]]
    out["race_peer_wall_s"] = [p["peer_wall_s"] for p in race["pairs"]]
    out["race_load_before"] = [p["load_average_before"][0] for p in race["pairs"]]
    out["race_dljax_cpu_s"] = [p.get("dljax_cpu_s") for p in race["pairs"]]
    out["race_peer_cpu_s"] = [p.get("peer_cpu_s") for p in race["pairs"]]
    quality = RACES[row.race].quality
    out["race_quality"] = quality
    out["race_dljax_quality"] = [p[f"dljax_{quality}"] for p in race["pairs"]]
    out["race_peer_quality"] = [p[f"peer_{quality}"] for p in race["pairs"]]
  return out


def _joined(values, fmt: str) -> str:
  return " / ".join(fmt.format(v) for v in values)


def _load_range(loads: list[float]) -> str:
  low, high = min(loads), max(loads)
  return f"load {low:.1f}" if f"{low:.1f}" == f"{high:.1f}" else f"load {low:.1f}-{high:.1f}"


def result_cell(name: str, fig: dict) -> str:
  parts = []
  for show in ROWS[name].show:
    if isinstance(show, Metric):
      values = [v * show.scale for v in fig[show.key] if v is not None]
      if values:
        parts.append(f"{fig['labels'][show.key]} {_joined(values, show.fmt)}{show.unit}")
    else:
      spread = (
        f"min {fig['min_return']:.1f}, median {fig['median_return']:.1f}, "
        f"max {fig['max_return']:.1f}"
      )
      if show.threshold is None:
        parts.append(f"{fig['num_seed_returns']} seeds: {spread}")
      else:
        parts.append(
          f"{fig['seeds_at_threshold']} of {fig['num_seed_returns']} seeds >= "
          f"{fig['threshold']:g} ({spread})"
        )
  seeds = fig["seeds"]
  if len(seeds) > 1:
    parts[-1] += f" (seeds {'/'.join(str(s) for s in seeds)})"
  return "; ".join(parts)


def wall_cell(name: str, fig: dict, race: dict | None) -> str:
  cell = (
    f"{_joined(fig['wall_s'], '{:.1f}')} s (CPU {_joined(fig['cpu_s'], '{:.1f}')} s; "
    f"{_load_range(fig['load_before'])})"
  )
  if race:
    cpu = ""
    if None not in fig["race_dljax_cpu_s"]:
      cpu = (
        f"; CPU {_joined(fig['race_dljax_cpu_s'], '{:.1f}')} s against "
        f"{_joined(fig['race_peer_cpu_s'], '{:.1f}')} s"
      )
    cell += (
      f"; race: **{_joined(fig['race_ratios'], '{:.2f}x')}** {ROWS[name].peer}'s wall time "
      f"({_joined(fig['race_dljax_wall_s'], '{:.1f}')} s against "
      f"{_joined(fig['race_peer_wall_s'], '{:.1f}')} s{cpu}; {fig['race_quality']} "
      f"{_joined(fig['race_dljax_quality'], '{:.4g}')} against "
      f"{_joined(fig['race_peer_quality'], '{:.4g}')}; {_load_range(fig['race_load_before'])}; "
      f"`{race['command']}`)"
    )
  return cell


def shown_config(row) -> str:
  """A row's config as the table names it: `NAME[:VARIANT]`."""
  return row.config.replace(".py", "")


def table(results: dict) -> str:
  """The README's results table, from results.json's content."""
  lines = [
    "| config | what | result | wall time (whole command) | step time |",
    "|---|---|---|---|---|",
  ]
  for name, row in ROWS.items():
    config = f"`{shown_config(row)}`"
    entry = results["rows"].get(name)
    if row.not_run or entry is None:
      why = (
        f"not run here ({row.not_run})"
        if row.not_run
        else f"not measured yet (`python -m benchmarks.reproduce --rows {name}`)"
      )
      lines.append(f"| {config} | {row.what} | {why} | | |")
      continue
    fig = entry["figures"]
    lines.append(
      f"| {config} | {row.what} | {result_cell(name, fig)} | "
      f"{wall_cell(name, fig, entry.get('race'))} | {fig['step_time_ms']:.1f} ms{f' per {row.step}' if row.step else ''} |"
    )
  footer = measured_on(results)
  if footer:
    lines += ["", footer]
  return "\n".join(lines)


def measured_on(results: dict) -> str:
  """The table's last line: when, and on which machine each row was measured ('' if none was)."""
  machines = {}  # machine -> the rows measured on it
  for name, entry in results["rows"].items():
    for r in entry["records"]:
      m = f"{r['machine']['cpu']}, {r['machine']['cores']} cores, jax {r['machine']['jax']}"
      machines.setdefault(m, set()).add(name)
  dates = sorted({r["date"][:10] for entry in results["rows"].values() for r in entry["records"]})
  if not dates:
    return ""
  if len(machines) == 1:
    where = next(iter(machines))
  else:
    where = "; ".join(
      f"{m} ({', '.join(f'`{shown_config(row)}`' for n, row in ROWS.items() if n in rows)})"
      for m, rows in sorted(machines.items())
    )
  return (
    f"Measured {', '.join(dates)} on {where}, by `python -m benchmarks.reproduce` "
    "(results/results.json: every run's command, metrics and load)."
  )


def page_value(results: dict, ref: str) -> str:
  """The figure `ROW.FIGURE[.INDEX]` of results.json, or `ROW.samplers.SAMPLER_STEPS.FIGURE`
  (benchmarks.samplers), as a page shows it."""
  name, _, key = ref.partition(".")
  if key.startswith("samplers."):
    _, spec, figure = key.split(".")
    value = results["rows"].get(name, {}).get("samplers", {}).get(spec, {}).get(figure)
    if value is None:
      raise DljaxError(
        f"a page quotes result {ref}, which results.json does not have (python -m "
        f"benchmarks.samplers --rows {name})"
      )
    return f"{value:.4g}"
  key, _, index = key.partition(".")
  if name not in results["rows"] or key not in results["rows"][name]["figures"]:
    raise DljaxError(f"a page quotes result {ref}, which results.json does not have")
  value = results["rows"][name]["figures"][key]
  if isinstance(value, list):
    value = value[int(index or 0)]
  return f"{value:.4g}" if isinstance(value, float) else str(value)


def render(text: str, results: dict) -> str:
  """`text` (README or a page) with its results table and quoted results filled."""
  if TABLE_START in text:
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    text = f"{head}{TABLE_START}\n{table(results)}\n{TABLE_END}{tail}"
  return PAGE_RESULT.sub(
    lambda m: f"<!-- result {m[1]} -->{page_value(results, m[1])}<!-- /result -->", text
  )


def pages(readme: str) -> list[str]:
  return [readme, *sorted(glob.glob(os.path.join(os.path.dirname(readme), "docs", "*.md")))]


def write_pages(results: dict, readme: str):
  for path in pages(readme):
    with open(path, encoding="utf-8") as f:
      text = f.read()
    new = render(text, results)
    if new != text:
      with open(path, "w", encoding="utf-8") as f:
        f.write(new)


def load_results(path: str) -> dict:
  if not os.path.exists(path):
    return {"rows": {}}
  with open(path) as f:
    return json.load(f)


def rows_to_run(names: list[str]) -> list[str]:
  """`--rows` checked (all runnable rows when empty), with the rows their flags need first."""
  unknown = [n for n in names if n not in ROWS]
  if unknown:
    raise DljaxError(f"--rows: no row {', '.join(unknown)}; the rows are {', '.join(ROWS)}")
  skipped = [n for n in names if ROWS[n].not_run]
  if skipped:
    raise DljaxError(f"--rows: {', '.join(skipped)} cannot run here ({ROWS[skipped[0]].not_run})")
  return names or [n for n, row in ROWS.items() if not row.not_run]


def needed_rows(name: str) -> list[str]:
  return [m for flag in ROWS[name].flags for m in re.findall(r"\{run:(\w+)\}", flag)]


def store(path: str, name: str, records: list[dict], race: dict | None):
  """Merges row `name` into results.json as it is now (another reproduce may have added rows),
  keeping its earlier race unless given a new one, and its samplers' scores (benchmarks.samplers
  rescores them); after every row, so that an interrupted reproduce keeps the rows done."""
  results = load_results(path)
  earlier = results["rows"].get(name, {})
  race = race or earlier.get("race")
  results["rows"][name] = {
    "records": records,
    "race": race,
    "figures": figures(name, records, race),
    **({"samplers": earlier["samplers"]} if "samplers" in earlier else {}),
  }
  with open(path, "w") as f:
    json.dump(results, f, indent=1)


def main(argv):
  del argv
  path = os.path.join(_OUT.value, "results.json")
  if not _TABLE_ONLY.value:
    names = rows_to_run(_ROWS.value)
    os.makedirs(_OUT.value, exist_ok=True)
    for name in names:
      for need in needed_rows(name):
        seed = ROWS[need].seeds[0]
        if not os.path.exists(os.path.join(workdir(_RUNS.value, need, seed), "summary.json")):
          print(f"{name} needs {need}: running it first", flush=True)
          run_seed(need, seed, _RUNS.value)
      row = ROWS[name]
      seeds = row.seeds[: _SEEDS.value] if _SEEDS.value else row.seeds
      records = []
      for seed in seeds:
        records.append(run_seed(name, seed, _RUNS.value))
        print(f"{name} seed {seed}: {json.dumps(records[-1]['final'])}", flush=True)
      store(path, name, records, None)  # before the race: a failed race keeps the runs
      if row.race and _RACES.value:
        store(path, name, records, run_race(row.race, row.race_pairs, _OUT.value))
      results = load_results(path)
      print(f"{name}: {result_cell(name, results['rows'][name]['figures'])}", flush=True)
  results = load_results(path)
  # The figures derive from the records and races: recomputed, so that a change to how they are
  # shown needs no rerun.
  for name, entry in results["rows"].items():
    entry["figures"] = figures(name, entry["records"], entry["race"])
  if results["rows"]:
    with open(path, "w") as f:
      json.dump(results, f, indent=1)
  write_pages(results, _README.value)
  print(table(results))


if __name__ == "__main__":
  cli.run_main(main)
