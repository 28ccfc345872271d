"""SIGINT/SIGTERM during training: the first asks for a clean stop, a second one ends the run.

The first signal sets a flag the loop checks between steps (it then saves a checkpoint and exits
with 128 + the signal number); a second one ends the process at once.

A step can wait forever (e.g. an XLA:CPU deadlock, docs/xla-cpu-qr-deadlock.md) with the main
thread blocked inside jaxlib, where Python never runs its signal handlers. So the signals also go
to a wakeup pipe (`signal.set_wakeup_fd`, written by the C-level handler) that a watcher thread
reads: it sets the flag on the first signal and, on the second, names the checkpoint a rerun
resumes from and exits with 128 + the signal number without waiting for anything.
"""

import os
import signal
import threading

from dljax.checkpoint import Checkpointer


def resume_hint(checkpointer: Checkpointer) -> str:
  """Where a rerun of the same command resumes from: the last checkpoint complete on disk."""
  steps = checkpointer.committed_steps()
  if steps:
    return (
      f"The last checkpoint is step {steps[-1]} in {checkpointer.directory}: run the same "
      f"command again to resume from it."
    )
  return (
    f"No checkpoint was saved yet in {checkpointer.directory}: running the same command again "
    f"starts over."
  )


class StopSignals:
  """A context in which SIGINT/SIGTERM set `received` (the signal number) instead of ending the
  process, and a second one exits at once."""

  SIGNALS = (signal.SIGINT, signal.SIGTERM)

  def __init__(self, checkpointer: Checkpointer):
    self.received = None
    self._checkpointer = checkpointer

  def __enter__(self):
    self._read_fd, self._write_fd = os.pipe()
    os.set_blocking(self._write_fd, False)  # required by set_wakeup_fd
    self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
    self._previous_wakeup_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
    self._watcher = threading.Thread(target=self._watch, name="dljax-stop-signals", daemon=True)
    self._watcher.start()
    return self

  def _handle(self, signum, frame):
    """The Python-level handler: the watcher thread acts on the signal (it must be installed so
    that SIGINT does not raise KeyboardInterrupt and SIGTERM does not kill the process)."""

  def _watch(self):
    while data := os.read(self._read_fd, 64):  # b"" once __exit__ closes the write end
      for signum in data:  # one byte per signal, for any signal with a Python-level handler
        if signum not in self.SIGNALS:
          continue
        if self.received is None:
          self.received = signum
          os.write(
            2,
            f"\n{signal.Signals(signum).name} received: stopping after the step in "
            f"progress (send it again to exit at once).\n".encode(),
          )
        else:
          self._exit_now(signum)

  def _exit_now(self, signum: int):
    try:
      os.write(
        2,
        f"\n{signal.Signals(signum).name} received again: exiting now, without waiting for the "
        f"step in progress or saving. {resume_hint(self._checkpointer)}\n".encode(),
      )
    finally:  # a clean exit would wait for the (possibly hung) XLA threads
      os._exit(128 + signum)

  def __exit__(self, *exc):
    for s, handler in self._previous.items():
      signal.signal(s, handler)
    signal.set_wakeup_fd(self._previous_wakeup_fd)
    os.close(self._write_fd)
    self._watcher.join()
    os.close(self._read_fd)
