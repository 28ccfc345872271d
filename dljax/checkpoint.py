"""Checkpoints with orbax: periodic saves, keep the last k, resume from the newest.

Each checkpoint holds the state pytree and a JSON `meta` item. `meta["identity"]` says which
experiment wrote it (task, model, environment...): a WORKDIR holding another experiment's
checkpoints is refused rather than overwritten. Tasks may add more (a language model's vocabulary),
so that a checkpoint directory alone is enough to use the model.

Nothing on disk is ever deleted here but by orbax's keep-the-last-k: a checkpoint that cannot be
read is moved to WORKDIR/corrupt_checkpoints/ when an older one can be resumed from instead, and a
save that fails (disk full) leaves the previous checkpoints as they were.

Importing this module changes nothing in the process; `install()` (called by the entry points)
sets up orbax's array writing and quiets the failure noise `Checkpointer` reports itself.
"""

import contextlib
import errno
import functools
import gc
import json
import logging
import os
import sys
import warnings

import jax
import orbax.checkpoint as ocp

from dljax import distributed
from dljax.errors import CheckpointMismatchError, DljaxError, UnreadableCheckpointError


def _not_reported_elsewhere(record: logging.LogRecord) -> bool:
  """Orbax logs each failure of its background writes with a traceback (dozens of lines for a
  full disk), and asyncio logs the sibling writes that failed with it, before orbax raises the
  failure from save or wait, where `Checkpointer` reports it: drop those copies."""
  from_orbax = f"{os.sep}orbax{os.sep}" in record.pathname
  return not (record.exc_info and (from_orbax or _disk_full(record.exc_info[1])))


def _drop_closed_loop_noise(unraisable, previous):
  """After a failed save, tensorstore completes the writes still in flight and calls back into
  orbax's event loop, already closed: a traceback each, for nothing the failure does not say."""
  if not (
    isinstance(unraisable.exc_value, RuntimeError) and "loop is closed" in str(unraisable.exc_value)
  ):
    previous(unraisable)


def _write_replicated_arrays_from_one_replica():
  """Orbax's default on CPU (not on GPU) splits the writing of an array replicated over several
  devices between them, slicing it with eager jax ops compiled once per shape: ~0.9 s of CPU in
  the first save of cartpole_ppo's 2-device state, which one replica writes in milliseconds. Orbax
  warns that the handler is replaced: this is the one place that does it."""
  # Orbax exports no public name for its default array metadata store (orbax is pinned to 0.12.x).
  from orbax.checkpoint._src.metadata import array_metadata_store

  absl_log = logging.getLogger("absl")
  level = absl_log.level
  absl_log.setLevel(logging.ERROR)
  try:
    ocp.type_handlers.register_type_handler(
      jax.Array,
      ocp.type_handlers.ArrayHandler(
        use_replica_parallel=False, array_metadata_store=array_metadata_store.Store()
      ),
      override=True,
    )
  finally:
    absl_log.setLevel(level)


_installed = False


def install():
  """Makes this process's orbax write as `Checkpointer` expects: replicated arrays from one
  replica, and the failure noise `Checkpointer` reports itself silenced (loggers filtered,
  `sys.unraisablehook` wrapped). Process-wide, so the entry points call it (experiments.train, and
  so each process experiments.launch starts; experiments.generate; the tests' conftest), not an
  import; calling it again does nothing."""
  global _installed
  if _installed:
    return
  _write_replicated_arrays_from_one_replica()
  logging.getLogger("absl").addFilter(_not_reported_elsewhere)
  logging.getLogger("asyncio").addFilter(_not_reported_elsewhere)
  sys.unraisablehook = functools.partial(_drop_closed_loop_noise, previous=sys.unraisablehook)
  _installed = True


@contextlib.contextmanager
def _abandoned_restore_work_quiet():
  """A restore that fails part way abandons the coroutines orbax had not yet awaited and the
  sibling reads that failed with it: Python warns when each coroutine is freed and asyncio logs
  each unretrieved failure, at random moments up to the process exit, after the one-line error
  that already says the checkpoint cannot be read. Silences exactly those two messages."""

  def not_never_retrieved(record: logging.LogRecord) -> bool:
    return "exception was never retrieved" not in record.getMessage()

  asyncio_log = logging.getLogger("asyncio")
  asyncio_log.addFilter(not_never_retrieved)
  try:
    with warnings.catch_warnings():
      warnings.filterwarnings("ignore", r"coroutine .* was never awaited", RuntimeWarning)
      yield
  finally:
    asyncio_log.removeFilter(not_never_retrieved)


class Checkpointer:
  def __init__(self, directory: str, identity: dict, keep: int = 3):
    self.directory = os.path.abspath(directory)
    # Compared with what JSON gives back, so tuples must already be lists.
    self.identity = json.loads(json.dumps(identity))
    self._saving = None  # the step of the save in flight
    self._manager = ocp.CheckpointManager(
      self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
    )

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def committed_steps(self) -> list[int]:
    """The steps whose checkpoint is complete on disk (a resumed run picks the last), without
    those an asynchronous save is still writing."""
    return sorted(ocp.path.step.checkpoint_steps(self.directory))

  def restore_newest(self, abstract_state) -> tuple[int | None, object]:
    """`(step, state)` of the newest checkpoint that reads back into `abstract_state`'s shapes,
    dtypes and shardings; `(None, None)` when there is none.

    Newer checkpoints that cannot be read (corrupt, half-written) are moved aside, each named on
    stderr, when an older one can be resumed from. If none can be read, nothing is moved and the
    newest one's error is raised: a cause common to all of them (say, a code change) must not
    make a run start over.
    """
    steps = self.committed_steps()
    unreadable = []
    for step in reversed(steps):
      try:
        self.check_identity(step)
        state, error = self.restore(step, abstract_state), None
      except UnreadableCheckpointError as e:
        error = e
      # In a job of several processes each reads its own shards: all skip a checkpoint that one
      # of them cannot read, so that they resume from the same step.
      if not distributed.all_true(error is None):
        unreadable.append((step, error or self._unreadable(step, "another process cannot read it")))
        continue
      for bad_step, error in unreadable:
        self._move_aside(bad_step, error, step)
      return step, state
    if unreadable:
      raise unreadable[0][1]
    return None, None

  def _move_aside(self, step: int, error: UnreadableCheckpointError, resume_step: int):
    """Moves the checkpoint of `step` to WORKDIR/corrupt_checkpoints; in a job of several
    processes the writer moves it while the others wait, then all see the directory without it."""
    if distributed.is_writer():
      base = os.path.join(os.path.dirname(self.directory), "corrupt_checkpoints", str(step))
      aside, copies = base, 1
      while os.path.exists(aside):  # an earlier corrupt checkpoint of the same step
        copies += 1
        aside = f"{base}.{copies}"
      os.makedirs(os.path.dirname(aside), exist_ok=True)
      os.rename(os.path.join(self.directory, str(step)), aside)
      print(
        f"warning: the checkpoint for step {step} cannot be read ({error.reason}); moved it to "
        f"{aside} and resuming from step {resume_step}",
        file=sys.stderr,
      )
    distributed.barrier(f"dljax_checkpoint_moved_aside_{step}")
    self._manager.reload()

  def read_meta(self, step: int) -> dict:
    return self._restore_item(step, "meta", ocp.args.JsonRestore())

  def check_identity(self, step: int) -> dict:
    """Reads `meta` at `step` and refuses checkpoints written by a different experiment."""
    meta = self.read_meta(step)
    if meta.get("identity") != self.identity:
      raise CheckpointMismatchError(
        f"{self.directory} holds checkpoints of a different experiment (found "
        f"{meta.get('identity')}, expected {self.identity}); nothing was overwritten: use another "
        f"--workdir, or delete that directory to start over"
      )
    return meta

  def restore(self, step: int, abstract_state):
    """Restores the state at `step` into the shapes, dtypes and shardings of `abstract_state`."""
    return self._restore_item(step, "state", ocp.args.StandardRestore(abstract_state))

  def restore_raw(self, step: int) -> dict:
    """The saved state as a plain dict tree on the default device, without knowing its shape:
    what inference tools need when they only have the checkpoint directory."""
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return self._restore_item(step, "state", ocp.args.StandardRestore(fallback_sharding=device))

  def _restore_item(self, step: int, name: str, args):
    """Restores one item of the checkpoint at `step`; any failure (orbax raises several types)
    is an `UnreadableCheckpointError` naming the step and the reason."""
    with _abandoned_restore_work_quiet():
      try:
        return self._manager.restore(step, args=ocp.args.Composite(**{name: args}))[name]
      except Exception as e:  # noqa: BLE001 (orbax raises several types for unreadable files)
        error = self._unreadable(step, e)
      gc.collect()  # frees what the failed restore abandoned while its messages are silenced
    raise error

  def save(self, step: int, state, meta: dict | None = None, wait: bool = False):
    meta = {"identity": self.identity, **(meta or {})}
    # Orbax copies device arrays to host before save() returns, so the caller may donate `state`.
    # It writes in a background thread: a failed write surfaces here at the next save, or in wait.
    with self._failed_save_reported():
      self._manager.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
      )
    self._saving = step
    if wait:
      self.wait()

  def wait(self):
    with self._failed_save_reported():
      self._manager.wait_until_finished()

  @contextlib.contextmanager
  def _failed_save_reported(self):
    """A full disk (orbax wraps the OSError in its own errors) becomes a one-line error."""
    try:
      yield
    except Exception as e:
      if not _disk_full(e):
        raise
      done = [s for s in self.committed_steps() if s != self._saving]
      previous = f"the previous checkpoint (step {done[-1]})" if done else "no earlier checkpoint"
      raise DljaxError(
        f"the disk is full: saving the checkpoint for step {self._saving} in {self.directory} "
        f"failed (no space left on device); {previous} is intact. Free some space (or move WORKDIR to a "
        f"bigger disk), then rerun the same command to resume."
      ) from e

  def _unreadable(self, step: int, error: Exception | str) -> UnreadableCheckpointError:
    reason = error if isinstance(error, str) else f"{type(error).__name__}: {_first_line(error)}"
    return UnreadableCheckpointError(
      f"the checkpoint for step {step} in {self.directory} cannot be read ({reason}). "
      f"Nothing was deleted. Move {os.path.join(self.directory, str(step))} aside to resume from "
      f"the previous checkpoint, or use a fresh --workdir.",
      reason,
    )


def _first_line(error: Exception) -> str:
  return str(error).splitlines()[0] if str(error) else ""


def _disk_full(error: BaseException | None) -> bool:
  """Whether `error` or an error it was raised from says the disk or quota is full."""
  while error is not None:
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
      return True
    if "No space left on device" in str(error) or "Disk quota exceeded" in str(error):
      return True
    error = error.__cause__ or error.__context__
  return False
