"""One run per WORKDIR: an exclusive lock that a second run started in the same directory meets.

The lock is `fcntl.flock` on WORKDIR/run.lock, so the kernel drops it when the holder dies, even
by SIGKILL: no stale lock to clear by hand. The file holds the holder's pid while it runs, for
the refusal message; a run removes the file it created when it ends (one killed by SIGKILL leaves
it behind, unlocked, for the next run to reuse). A run that fails before writing anything leaves
no WORKDIR behind when it created it.
"""

import contextlib
import errno
import fcntl
import os

from dljax.errors import DljaxError

LOCK_FILE = "run.lock"


def _create_workdir(workdir: str) -> str | None:
  """Creates `workdir` if needed; returns the topmost directory it created (None: it existed).
  Bad paths become one-line errors."""
  if not workdir:
    raise DljaxError("--workdir is empty; name a directory for the run, e.g. --workdir runs/NAME")
  if os.path.isdir(workdir):
    return None
  if os.path.lexists(workdir):
    raise DljaxError(f"--workdir {workdir} exists and is not a directory; pick another path")
  top = os.path.abspath(workdir)
  while not os.path.lexists(os.path.dirname(top)):
    top = os.path.dirname(top)
  try:
    os.makedirs(workdir)
  except OSError as e:
    raise DljaxError(
      f"cannot create --workdir {workdir}: {e.strerror}; pick a path in a writable directory"
    ) from e
  return top


def _lock(path: str, workdir: str) -> int | None:
  """Opens and locks `path`; refuses at once if another live process holds it. None: the file
  was removed by the run that held it, between our open and lock (try again)."""
  try:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  except OSError as e:
    raise DljaxError(f"cannot write in --workdir {workdir}: {e.strerror}; pick another path") from e
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError as e:
    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
    os.close(fd)
    if e.errno not in (errno.EAGAIN, errno.EACCES):
      raise DljaxError(f"cannot lock {path}: {e.strerror}; pick another --workdir") from e
    raise DljaxError(
      f"another run (pid {holder}) is using --workdir {workdir}; wait for it to end or stop "
      f"it (a rerun resumes from its last checkpoint), or pick another --workdir"
    ) from e
  if not os.path.exists(path) or os.stat(path).st_ino != os.fstat(fd).st_ino:
    os.close(fd)
    return None
  os.ftruncate(fd, 0)
  os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
  return fd


@contextlib.contextmanager
def hold(workdir: str):
  """Holds WORKDIR's lock for the `with` block (creating WORKDIR if needed)."""
  created_dir = _create_workdir(workdir)
  path = os.path.join(workdir, LOCK_FILE)
  fd = None
  while fd is None:
    created_file = not os.path.exists(path)
    fd = _lock(path, workdir)
  try:
    yield
  finally:
    # Still holding the lock: nobody else can be using the file we remove.
    os.ftruncate(fd, 0)
    if created_file:
      os.remove(path)
    os.close(fd)
    if created_dir and not os.listdir(workdir):  # failed before writing anything
      _remove_up_to(os.path.abspath(workdir), created_dir)


def _remove_up_to(directory: str, top: str):
  """Removes `directory` and its parents up to `top`, all empty."""
  os.rmdir(directory)
  if directory != top:
    _remove_up_to(os.path.dirname(directory), top)
