"""Image datasets: embedded splits, TFDS loading under mock data, on-device batching."""

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import mock_tfds_splits

from dljax import parallel
from dljax.data import load_image_dataset
from dljax.data.device_feed import DeviceDataset
from dljax.errors import DljaxError


def test_mnist5k_is_a_fixed_stratified_4000_1000_split():
  data = load_image_dataset("mnist5k")
  assert data.train_images.shape == (4000, 28, 28, 1) and data.test_images.shape == (
    1000,
    28,
    28,
    1,
  )
  assert np.bincount(data.test_labels).tolist() == [100] * 10
  assert 0.0 <= data.train_images.min() and data.train_images.max() <= 1.0
  again = load_image_dataset("mnist5k")
  np.testing.assert_array_equal(data.test_labels, again.test_labels)


def test_digits_split():
  data = load_image_dataset("digits")
  assert data.train_images.shape == (1437, 8, 8, 1) and data.test_images.shape == (360, 8, 8, 1)
  assert data.num_classes == 10


@pytest.mark.parametrize("name,shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_tfds_datasets_load_through_data_source(name, shape):
  with tfds.testing.mock_data(num_examples=24):
    data = load_image_dataset(name)
  assert data.train_images.shape == (24, *shape) and data.test_images.shape == (24, *shape)
  assert data.train_labels.dtype == np.int32 and data.num_classes == 10


def test_tfds_train_and_test_arrays_come_from_their_own_splits():
  label = {"train": 1, "test": 2}
  with mock_tfds_splits(
    lambda split: (
      [{"image": np.full((28, 28, 1), 50 * label[split], np.uint8), "label": label[split]}] * 3
    )
  ):
    data = load_image_dataset("mnist")
  assert data.train_labels.tolist() == [1] * 3 and data.test_labels.tolist() == [2] * 3
  np.testing.assert_allclose(data.train_images, 50 / 255)
  np.testing.assert_allclose(data.test_images, 100 / 255)


def test_unavailable_tfds_dataset_says_why_and_names_offline_alternatives(tmp_path):
  with pytest.raises(DljaxError, match="(?s)not prepared in .*tfds build fashion_mnist.*mnist5k"):
    load_image_dataset("fashion_mnist", data_dir=str(tmp_path), download=False)


def test_device_dataset_epochs_are_permutations_and_deterministic():
  mesh = parallel.make_data_mesh(2)
  data = DeviceDataset({"x": np.arange(10, dtype=np.int32)}, batch_size=4, seed=3, mesh=mesh)
  assert data.steps_per_epoch == 2
  batch = jax.jit(data.batch)
  seen = [np.asarray(batch(data.feed(s), s)["x"]) for s in range(4)]
  assert len(set(np.concatenate(seen[:2]))) == 8  # no repeats within an epoch
  assert not np.array_equal(np.concatenate(seen[:2]), np.concatenate(seen[2:]))  # reshuffled
  again = DeviceDataset({"x": np.arange(10, dtype=np.int32)}, batch_size=4, seed=3, mesh=mesh)
  np.testing.assert_array_equal(np.asarray(batch(again.feed(3), 3)["x"]), seen[3])


def assert_split_over_devices(array, mesh, expected):
  """Each device of `mesh` holds its own contiguous slice of `expected`'s rows, nothing more."""
  shards = sorted(array.addressable_shards, key=lambda shard: shard.index[0].start)
  assert {shard.device for shard in shards} == set(mesh.devices.flat)
  rows = len(expected) // mesh.size
  for i, shard in enumerate(shards):
    np.testing.assert_array_equal(shard.data, expected[i * rows : (i + 1) * rows])


def test_split_batch_gives_each_device_its_own_rows():
  mesh = parallel.make_data_mesh(2)
  batch = parallel.replicate(np.arange(12, dtype=np.float32).reshape(6, 2), mesh)
  with jax.set_mesh(mesh):
    doubled = jax.jit(lambda x: 2 * parallel.split_batch(x))(batch)
  assert_split_over_devices(doubled, mesh, 2 * np.asarray(batch))


def test_device_dataset_batches_arrive_split_over_devices():
  mesh = parallel.make_data_mesh(2)
  data = DeviceDataset({"x": np.arange(10, dtype=np.int32)}, batch_size=4, seed=3, mesh=mesh)
  with jax.set_mesh(mesh):
    batch = jax.jit(data.batch)(data.feed(0), 0)["x"]
  assert_split_over_devices(batch, mesh, np.asarray(batch))


def test_batch_larger_than_dataset_or_not_divisible_is_refused():
  mesh = parallel.make_data_mesh(2)
  with pytest.raises(DljaxError, match="larger than the dataset"):
    DeviceDataset({"x": np.zeros(10)}, batch_size=16, seed=0, mesh=mesh)
  with pytest.raises(DljaxError, match="not divisible by the 2 devices"):
    DeviceDataset({"x": np.zeros(10)}, batch_size=5, seed=0, mesh=mesh)
