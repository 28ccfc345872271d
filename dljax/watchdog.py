"""The loop's watchdog: a run whose train steps stop completing ends, instead of hanging forever.

A step can stall with every thread parked and no error (an XLA:CPU deadlock,
docs/xla-cpu-qr-deadlock.md). The loop tells the watchdog when it dispatches a train-step call
and hands it the call's metrics; a thread polls their `is_ready()`, so the watchdog counts
*completed* steps while the loop itself never waits for them (no host sync is added). When calls
are outstanding and none completes for `timeout_s` seconds, the watchdog writes what it knows (the
last completed step, the checkpoint a rerun resumes from, every thread's Python stack) to stderr
and to WORKDIR/stall_traceback.txt, and ends the process with `STALL_EXIT_CODE`: rerunning the same
command resumes from the last checkpoint. Time spent outside train steps (evaluation, checkpoints)
never counts, and neither does compilation: the loop starts the watchdog after compiling the step
ahead of time, and the first call of a step it cannot compile ahead of time is not watched.
"""

import collections
import dataclasses
import faulthandler
import os
import threading
import time
from typing import Any

import jax

from dljax.checkpoint import Checkpointer
from dljax.stop_signals import resume_hint

STALL_EXIT_CODE = 75  # sysexits.h's EX_TEMPFAIL: a temporary failure; running again may succeed
DUMP_FILE = "stall_traceback.txt"


@dataclasses.dataclass
class _Call:
  steps_after: int  # the run's step count once this call has completed
  metrics: Any = None  # None until the call has returned


def _completed(call: _Call) -> bool:
  if call.metrics is None:
    return False
  return all(x.is_ready() for x in jax.tree.leaves(call.metrics) if isinstance(x, jax.Array))


class Watchdog:
  """A context that ends the process when no dispatched train-step call completes for
  `timeout_s` seconds (0: never). `unwatched_calls` first calls are not watched (they compile)."""

  def __init__(
    self, timeout_s: float, checkpointer: Checkpointer, workdir: str, step: int, unwatched_calls=0
  ):
    self.timeout_s = timeout_s
    self._checkpointer = checkpointer
    self._dump_path = os.path.join(workdir, DUMP_FILE)
    self._completed_steps = step
    self._unwatched = unwatched_calls
    self._calls: collections.deque[_Call] = collections.deque()  # oldest first
    self._current: _Call | None = None  # started, not yet returned
    self._stop = threading.Event()

  def __enter__(self):
    if self.timeout_s > 0:
      self._thread = threading.Thread(target=self._watch, name="dljax-watchdog", daemon=True)
      self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    if self.timeout_s > 0:
      self._thread.join()

  def call_started(self, steps_after: int):
    """Called before a train-step call that brings the run to `steps_after` steps: the call may
    block (a host-driven step) or return before its work is done (asynchronous dispatch)."""
    if self.timeout_s <= 0:
      return
    if self._unwatched:
      self._unwatched -= 1
      return
    self._current = _Call(steps_after)
    self._calls.append(self._current)

  def call_returned(self, metrics):
    """Called with the metrics of the call just started; they are ready once it has completed."""
    if self._current is not None:
      self._current.metrics = metrics
      self._current = None

  def _watch(self):
    poll_s = min(1.0, self.timeout_s / 4)
    last_progress = time.monotonic()
    while not self._stop.wait(poll_s):
      now = time.monotonic()
      while self._calls and _completed(self._calls[0]):
        self._completed_steps = self._calls.popleft().steps_after
        last_progress = now
      if not self._calls:  # nothing in flight (evaluating, checkpointing): nothing can stall
        last_progress = now
      elif now - last_progress > self.timeout_s:
        self._exit_stalled(self._calls[-1].steps_after)

  def _exit_stalled(self, dispatched_steps: int):
    message = (
      f"\nwatchdog: no train step completed for {self.timeout_s:g} s; the run is stalled after "
      f"step {self._completed_steps} (steps up to {dispatched_steps} were dispatched). "
      f"{resume_hint(self._checkpointer)} Every thread's Python stack follows and is in "
      f"{self._dump_path}. Exiting with status {STALL_EXIT_CODE}.\n"
    )
    try:
      with open(self._dump_path, "a") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}{message}")
        f.flush()
        faulthandler.dump_traceback(f.fileno(), all_threads=True)
      os.write(2, message.encode())
      faulthandler.dump_traceback(2, all_threads=True)
    finally:  # a clean exit would wait for the hung XLA threads
      os._exit(STALL_EXIT_CODE)
