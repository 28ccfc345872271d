"""Runs several smoke experiments in one process and prints their training losses as JSON.

A process's device count is fixed when JAX starts, so comparing device counts takes one process
per count; running every family in it pays the start-up once:

  python -m tests.family_runs --cpu_devices 8 --workdir DIR NAME[:VARIANT][@KEY=JSON,...] ...

Each run logs every call (`log_every_steps = steps_per_call`), evaluates only at the end and
writes no samples; XLA compiles at optimisation level 0 (compiling is most of a smoke run's CPU
time). Stdout's last line is `{run: {"train": {loss_name: [[step, value], ...]}, "final": ...,
"devices": ...}}`; stderr says each run's CPU seconds.
"""

import argparse
import json
import os
import sys
import time


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--cpu_devices", type=int, required=True)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("runs", nargs="+", help="config[:variant] or config[:variant]@KEY=V,KEY=V")
  args = parser.parse_args()

  from dljax import parallel

  parallel.setup_devices(args.cpu_devices, xla_optimization_level=0)
  from dljax.cli import load_config
  from dljax.tasks import train

  results = {}
  for run in args.runs:
    spec, _, overrides = run.partition("@")
    name, _, variant = spec.partition(":")
    values = dict(kv.split("=", 1) for kv in overrides.split(",") if kv)
    config = load_config(f"experiments/configs/{name}.py" + (f":{variant}" if variant else ""))
    config.quiet = True
    config.update_from_flattened_dict({k: json.loads(v) for k, v in values.items()})
    config.log_every_steps = config.steps_per_call
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 0
    if "sample_tokens" in config:
      config.sample_tokens = 0
    workdir = os.path.join(args.workdir, run.replace("/", "_").replace(":", "_"))
    t0 = time.process_time()
    summary = train(config, workdir)
    print(f"{run}: {time.process_time() - t0:.1f} s CPU", file=sys.stderr)
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      records = [json.loads(line) for line in f]
    losses = {
      k: [[r["step"], r[k]] for r in records if r["split"] == "train"]
      for k in records[0]
      if k.endswith("loss")
    }
    results[run] = {"train": losses, "final": summary["final"], "devices": summary["devices"]}
  print(json.dumps(results))


if __name__ == "__main__":
  main()
