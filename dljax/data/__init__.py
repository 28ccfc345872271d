"""Dataset registry: every dataset a config can name, and how to load it."""

import dataclasses
import functools

from dljax.data.images import (
  ImageDataset,
  load_binarized_mnist,
  load_digits,
  load_idx_images,
  load_mnist5k,
  load_tfds_images,
)
from dljax.data.placement import ProcessShard
from dljax.errors import unknown_name

IMAGE_DATASETS = {
  "mnist5k": load_mnist5k,
  "digits": load_digits,
  "mnist": functools.partial(load_idx_images, "mnist"),  # fetched: python -m dljax.data.fetch
  "fashion_mnist": functools.partial(load_idx_images, "fashion_mnist"),
  "cifar10": functools.partial(load_tfds_images, "cifar10"),
  "binarized_mnist": load_binarized_mnist,  # unlabelled: for generative models only
}
TFDS_IMAGE_DATASETS = ("cifar10", "binarized_mnist")
IDX_IMAGE_DATASETS = ("mnist", "fashion_mnist")


def load_image_dataset(
  name: str,
  data_dir: str | None = None,
  download: bool = True,
  train_shard: ProcessShard | None = None,
) -> ImageDataset:
  """Dataset `name`, with the whole test split and the whole train split or `train_shard`'s part
  of it (TFDS reads only that part; an embedded or fetched dataset, in memory anyway, is cut).
  `data_dir`: TFDS's data_dir, or the directory of fetched datasets (dljax.data.idx); None: their
  defaults."""
  if name not in IMAGE_DATASETS:
    raise unknown_name("image dataset", name, IMAGE_DATASETS)
  if name in TFDS_IMAGE_DATASETS:
    return IMAGE_DATASETS[name](data_dir=data_dir, download=download, train_shard=train_shard)
  if name in IDX_IMAGE_DATASETS:
    data = IMAGE_DATASETS[name](data_dir=data_dir)
  else:
    data = IMAGE_DATASETS[name]()
  if train_shard is None:
    return data
  rows = train_shard.rows(len(data.train_images))
  part = slice(rows.start, rows.stop)
  return dataclasses.replace(
    data, train_images=data.train_images[part], train_labels=data.train_labels[part]
  )
