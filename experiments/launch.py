"""Runs one training job as several JAX processes on this host (what a cluster does over hosts).

  python -m experiments.launch --processes N [--devices_per_process K] \\
      --config experiments/configs/mnist_cnn.py[:VARIANT] --workdir DIR [--config.KEY=VALUE ...]

Starts N `experiments.train` processes with the given flags plus `--config.distributed=True` and
`--config.cpu_devices=K`, joined through DLJAX_COORDINATOR_ADDRESS, DLJAX_NUM_PROCESSES and
DLJAX_PROCESS_ID (dljax.distributed), on CPU with gloo collectives. It waits for them and exits
with the job's status: 0 if all succeed; otherwise the first failure's exit code, after stopping
the others (SIGTERM, then SIGKILL). A SIGTERM to the launcher goes to every process. Only
process 0 prints and writes the job's files; orbax checkpoints are written by all. The launcher
itself imports neither jax nor orbax: each process, an `experiments.train`, calls
`dljax.checkpoint.install()`.
"""

import os
import signal
import socket
import subprocess
import sys
import time

from absl import flags
from ml_collections import config_flags

from dljax import cli
from dljax.errors import DljaxError

_PROCESSES = flags.DEFINE_integer("processes", None, "How many processes run the job.")
_DEVICES = flags.DEFINE_integer("devices_per_process", 1, "CPU devices of each process.")
# Parsed here too, so that a bad config or override is one error before any process starts.
_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "Experiment config: experiments/configs/NAME.py[:VARIANT].", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and summary.")
flags.mark_flags_as_required(["processes", "config", "workdir"])
LAUNCHER_FLAGS = ("--processes", "--devices_per_process")

# After asking the other processes to stop, how long before they are killed.
STOP_GRACE_S = 20.0


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def train_flags(argv: list[str]) -> list[str]:
  """The command line without the launcher's own flags: what every process gets."""
  kept, skip = [], False
  for arg in argv:
    if skip:
      skip = False
    elif arg in LAUNCHER_FLAGS:
      skip = True  # `--processes 2`: its value follows
    elif not arg.startswith(tuple(f + "=" for f in LAUNCHER_FLAGS)):
      kept.append(arg)
  return kept


def start(num_processes: int, devices: int, train_flags: list[str]) -> list[subprocess.Popen]:
  address = f"127.0.0.1:{free_port()}"
  processes = []
  for i in range(num_processes):
    env = dict(
      os.environ,
      DLJAX_COORDINATOR_ADDRESS=address,
      DLJAX_NUM_PROCESSES=str(num_processes),
      DLJAX_PROCESS_ID=str(i),
    )
    command = [
      sys.executable,
      "-m",
      "experiments.train",
      *train_flags,
      "--config.distributed=True",
      f"--config.cpu_devices={devices}",
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


def main(argv: list[str]):
  del argv  # parsed into the flags above
  for flag in (_PROCESSES, _DEVICES):
    if flag.value < 1:
      raise DljaxError(f"--{flag.name}={flag.value} must be at least 1")
  processes = start(_PROCESSES.value, _DEVICES.value, train_flags(sys.argv[1:]))
  # Ctrl-C reaches every process from the terminal (one process group): forwarding it too would
  # be their second SIGINT, which exits without saving. A SIGTERM to the launcher is passed on.
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  signal.signal(signal.SIGTERM, lambda signum, frame: stop(processes, signum))
  sys.exit(wait(processes))


if __name__ == "__main__":
  cli.run_main(main)
