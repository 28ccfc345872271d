"""Stress check for XLA:CPU hangs at the start of RL runs (not part of the suite: minutes).

Starts N fresh processes, each under a timeout, and counts those that hang (killed at the timeout)
or fail. What each process runs (--what):
  init   cartpole_ppo's 8-seed initial state computed as the loop does (jitted, seeds split), 3 times
  vmap   its networks initialised with the seeds vmapped (replicated on every device): the pattern
         that deadlocked (docs/xla-cpu-qr-deadlock.md); expect hangs
  train  python -m experiments.train --config experiments/configs/cartpole_ppo.py:smoke

  python tests/stress_rl_starts.py --what init --n 100 --cpu_devices 2 --parallel 2 --timeout 120
"""

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

INIT = """
import sys
import jax
from dljax import parallel
from dljax.cli import load_config
from dljax.tasks import build_experiment
parallel.setup_devices(int(sys.argv[1]))
mesh = parallel.make_data_mesh()
experiment = build_experiment(load_config("experiments/configs/cartpole_ppo.py"), mesh)
init = jax.jit(experiment.init_state, out_shardings=experiment.state_sharding)
for _ in range(3):
  jax.block_until_ready(init())
"""

VMAP = """
import sys
import jax, jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P
from dljax import parallel
from dljax.models.rl import ActorCritic
parallel.setup_devices(int(sys.argv[1]))
model = ActorCritic(action_dim=2)
init = jax.jit(jax.vmap(lambda key: model.init(key, jnp.zeros((4,)))),
               out_shardings=NamedSharding(parallel.make_data_mesh(), P()))
for i in range(3):
  jax.block_until_ready(init(jax.random.split(jax.random.key(i), 8)))
"""


def command(what: str, cpu_devices: int, workdir: str) -> list[str]:
  if what == "train":
    return [
      sys.executable,
      "-m",
      "experiments.train",
      "--config=experiments/configs/cartpole_ppo.py:smoke",
      f"--workdir={workdir}",
      "--config.quiet=True",
      f"--config.cpu_devices={cpu_devices}",
    ]
  return [sys.executable, "-c", {"init": INIT, "vmap": VMAP}[what], str(cpu_devices)]


def run_one(args, index: int) -> tuple[str, float]:
  """'ok', 'hang' (killed at the timeout) or 'failed (rc N)', and the wall time."""
  with tempfile.TemporaryDirectory(prefix="stress_rl_") as workdir:
    t0 = time.perf_counter()
    try:
      out = subprocess.run(
        command(args.what, args.cpu_devices, workdir),
        cwd=REPO,
        timeout=args.timeout,
        capture_output=True,
        text=True,
        check=False,
      )
    except subprocess.TimeoutExpired:  # subprocess.run has killed it (SIGKILL)
      result = "hang"
    else:
      result = "ok" if out.returncode == 0 else f"failed (rc {out.returncode})"
      if out.returncode:
        print(out.stderr[-2000:], file=sys.stderr)
    seconds = time.perf_counter() - t0
  print(f"{index + 1:4d}/{args.n}: {result} in {seconds:.1f} s", flush=True)
  return result, seconds


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--what", choices=("init", "vmap", "train"), required=True)
  parser.add_argument("--n", type=int, default=100, help="fresh processes")
  parser.add_argument("--cpu_devices", type=int, default=1, help="XLA:CPU devices per process")
  parser.add_argument("--parallel", type=int, default=1, help="processes at a time")
  parser.add_argument(
    "--timeout", type=float, default=120, help="seconds before a process counts as hung"
  )
  args = parser.parse_args()
  t0 = time.perf_counter()
  with ThreadPoolExecutor(args.parallel) as pool:
    results = list(pool.map(lambda i: run_one(args, i), range(args.n)))
  counts = collections.Counter(result for result, _ in results)
  slowest = max(seconds for result, seconds in results if result == "ok") if counts["ok"] else 0
  print(
    f"{args.what}, {args.cpu_devices} CPU device(s), timeout {args.timeout:g} s: "
    f"{counts['hang']} of {args.n} hung, "
    f"{sum(v for k, v in counts.items() if k.startswith('failed'))} failed, {counts['ok']} ok "
    f"(slowest ok {slowest:.1f} s; {time.perf_counter() - t0:.0f} s in all)"
  )
  sys.exit(0 if counts["ok"] == args.n else 1)


if __name__ == "__main__":
  main()
