"""Several JAX processes running one job: start-up, and which process writes the job's files.

Every process runs the same program on its share of a mesh that spans all of them (see
dljax.parallel); collectives (gloo on CPU, NCCL on GPU) and orbax's checkpointing need them all.
Files other than checkpoints (metrics, TensorBoard, summary, figures, samples) are written by
process 0 only, the *writer*.

A process learns its place from the environment, set by `python -m experiments.launch` on one
host or by hand on a cluster without a scheduler JAX recognises:

  DLJAX_COORDINATOR_ADDRESS  host:port of process 0 (it listens there; the others connect)
  DLJAX_NUM_PROCESSES        how many processes the job has
  DLJAX_PROCESS_ID           this process's id, 0 .. DLJAX_NUM_PROCESSES - 1

With none of them set, `jax.distributed.initialize()` detects Slurm, Open MPI, Cloud TPU pods and
Kubernetes on its own.
"""

import atexit
import os
import shutil
import sys
import tempfile

import jax
import numpy as np

from dljax.errors import DljaxError

ENV_VARS = ("DLJAX_COORDINATOR_ADDRESS", "DLJAX_NUM_PROCESSES", "DLJAX_PROCESS_ID")
# A peer that stops answering for this long ends the job (jax's coordination service kills every
# process) instead of leaving the others blocked in a collective; JAX's default is 100 s.
HEARTBEAT_TIMEOUT_S = 30
# How long a process waits for all the others to join (JAX's default: 300 s).
INITIALIZATION_TIMEOUT_S = 120


def initialize():
  """Joins this process to the job; run before anything touches the devices."""
  values = {name: os.environ.get(name) for name in ENV_VARS}
  timeouts = {
    "initialization_timeout": INITIALIZATION_TIMEOUT_S,
    "heartbeat_timeout_seconds": HEARTBEAT_TIMEOUT_S,
  }
  if not any(values.values()):
    jax.distributed.initialize(**timeouts)
    return
  missing = [name for name, value in values.items() if not value]
  if missing:
    raise DljaxError(
      f"{', '.join(missing)} not set while {', '.join(n for n in ENV_VARS if n not in missing)} "
      f"is; set all of {', '.join(ENV_VARS)} (or none, on a cluster JAX detects)"
    )
  try:
    num_processes = int(values["DLJAX_NUM_PROCESSES"])
    process_id = int(values["DLJAX_PROCESS_ID"])
  except ValueError:
    raise DljaxError(
      f"DLJAX_NUM_PROCESSES={values['DLJAX_NUM_PROCESSES']!r} and "
      f"DLJAX_PROCESS_ID={values['DLJAX_PROCESS_ID']!r} must be integers"
    ) from None
  if not 0 <= process_id < num_processes:
    raise DljaxError(
      f"DLJAX_PROCESS_ID={process_id} is not in 0..{num_processes - 1} "
      f"(DLJAX_NUM_PROCESSES={num_processes}); give each process its own id in that range"
    )
  jax.distributed.initialize(
    coordinator_address=values["DLJAX_COORDINATOR_ADDRESS"],
    num_processes=num_processes,
    process_id=process_id,
    **timeouts,
  )


def is_writer() -> bool:
  """Whether this process writes the job's files (metrics, summary, figures, samples)."""
  return jax.process_index() == 0


def output_dir(workdir: str) -> str:
  """Where this process writes files that every process computes (samples, figures): `workdir`
  for the writer; for the others a private scratch directory deleted at exit, since computing
  them may take collectives that every process must join."""
  if is_writer():
    return workdir
  scratch = tempfile.mkdtemp(prefix=f"dljax-process{jax.process_index()}-")
  atexit.register(shutil.rmtree, scratch, ignore_errors=True)
  return scratch


def fetch(tree):
  """`tree`'s arrays as numpy arrays on this host, including those whose shards live on several
  processes' devices (a jax.Array split over a mesh that spans processes, which `device_get`
  refuses): those are gathered, a collective that every process must join at the same point."""
  from jax.experimental import multihost_utils

  def one(x):
    if isinstance(x, jax.Array) and not (x.is_fully_addressable or x.is_fully_replicated):
      return multihost_utils.process_allgather(x, tiled=True)
    return jax.device_get(x)

  return jax.tree.map(one, tree)


def all_true(value: bool) -> bool:
  """Whether `value` is true on every process of the job: an all-gather that every process must
  join at the same point (alone, a process's own `value`)."""
  if jax.process_count() == 1:
    return value
  from jax.experimental import multihost_utils

  return bool(np.all(multihost_utils.process_allgather(np.int32(value))))


def barrier(name: str):
  """In a job of several processes, returns once every process has called it with `name`: what
  the others do after the writer changed shared files (a rename) before they read them."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)


def agreed_stop_signal(received: int | None, at_boundary: bool) -> int | None:
  """The stop signal (SIGINT/SIGTERM number) on which every process of the job stops now, or None.

  Alone, a process stops after any step on its own signal (`received`). In a job of several, one
  that stopped alone would leave the others blocked in the next step's all-reduce; so they decide
  together, only at boundaries (`at_boundary`: the loop's log steps, already a host sync) where
  every process calls this: an all-gather of the signals, any of which stops every process.
  """
  if jax.process_count() == 1:
    return received
  if not at_boundary:
    return None
  from jax.experimental import multihost_utils

  signals = multihost_utils.process_allgather(np.int32(received or 0))
  return int(np.max(signals)) or None


# Exit status of a process whose job lost a peer (EX_TEMPFAIL: rerunning the job resumes it).
PEER_LOST_EXIT_CODE = 75


def exit_if_peer_lost(error: Exception):
  """In a job of several processes, a JAX runtime error (a collective whose peer died: gloo's
  "Connection reset by peer") ends this process at once with one line, instead of a traceback
  followed by JAX's shutdown barrier, which would wait for the dead peer until the coordination
  service's heartbeat timeout aborts the process. Does nothing otherwise."""
  if not isinstance(error, jax.errors.JaxRuntimeError) or jax.process_count() == 1:
    return
  first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
  sys.stderr.write(
    f"\nerror: process {jax.process_index()} of this {jax.process_count()}-process job stops: a "
    f"collective failed, most likely because another process died ({first_line}). Rerun the "
    f"job to resume from its last checkpoint.\n"
  )
  sys.stderr.flush()
  os._exit(PEER_LOST_EXIT_CODE)
