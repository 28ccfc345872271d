"""Runs one training job as several JAX processes on this host (what a cluster does over hosts).

  python -m experiments.launch --processes N [--devices_per_process K] \\
      --config experiments/configs/mnist_cnn.py[:VARIANT] --workdir DIR [--config.KEY=VALUE ...]

Starts N `experiments.train` processes with the given flags plus `--config.distributed=True` and
`--config.cpu_devices=K`, joined through DLJAX_COORDINATOR_ADDRESS, DLJAX_NUM_PROCESSES and
DLJAX_PROCESS_ID (dljax.distributed), on CPU with gloo collectives. It waits for them and exits
with the job's status: 0 if all succeed; otherwise the first failure's exit code, after stopping
the others (SIGTERM, then SIGKILL). SIGINT/SIGTERM to the launcher go to every process. Only
process 0 prints and writes the job's files; orbax checkpoints are written by all.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

# After asking the other processes to stop, how long before they are killed.
STOP_GRACE_S = 20.0


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
  parser = argparse.ArgumentParser(
    prog="python -m experiments.launch",
    description="Run one experiments.train job as several JAX processes on this host.",
  )
  parser.add_argument("--processes", type=int, required=True, help="number of processes")
  parser.add_argument("--devices_per_process", type=int, default=1, help="CPU devices each")
  args, train_flags = parser.parse_known_args(argv)
  for name in ("processes", "devices_per_process"):
    if getattr(args, name) < 1:
      print(f"error: --{name}={getattr(args, name)} must be at least 1", file=sys.stderr)
      sys.exit(2)
  return args, train_flags


def start(args, train_flags: list[str]) -> list[subprocess.Popen]:
  address = f"127.0.0.1:{free_port()}"
  processes = []
  for i in range(args.processes):
    env = dict(
      os.environ,
      DLJAX_COORDINATOR_ADDRESS=address,
      DLJAX_NUM_PROCESSES=str(args.processes),
      DLJAX_PROCESS_ID=str(i),
    )
    command = [
      sys.executable,
      "-m",
      "experiments.train",
      *train_flags,
      "--config.distributed=True",
      f"--config.cpu_devices={args.devices_per_process}",
    ]
    processes.append(subprocess.Popen(command, env=env))
  return processes


def stop(processes: list[subprocess.Popen], sig=signal.SIGTERM):
  for p in processes:
    if p.poll() is None:
      p.send_signal(sig)


def wait(processes: list[subprocess.Popen]) -> int:
  """The job's exit status: the first non-zero one (the others then stopped), else 0."""
  while True:
    codes = [p.poll() for p in processes]
    failed = [c for c in codes if c not in (None, 0)]
    if failed:
      stop(processes)
      deadline = time.monotonic() + STOP_GRACE_S
      while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
      stop(processes, signal.SIGKILL)
      for p in processes:
        p.wait()
      return failed[0] if failed[0] > 0 else 128 - failed[0]
    if all(c == 0 for c in codes):
      return 0
    time.sleep(0.1)


def main(argv: list[str]) -> int:
  args, train_flags = parse_args(argv)
  processes = start(args, train_flags)
  for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda signum, frame: stop(processes, signum))
  return wait(processes)


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
