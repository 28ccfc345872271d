"""The vision chapter end to end on the spine: smoke configs, learning, data parallelism, TFDS."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import load_config, mock_tfds_splits, write_idx_dataset

from dljax import parallel
from dljax.config import base_config
from dljax.models import build_model
from dljax.optim import make_optimizer
from dljax.steps import make_train_step
from dljax.tasks import train
from dljax.tasks.classification import classification_loss
from dljax.train_state import init_model_state


@pytest.mark.parametrize("name", ["mnist_mlp", "mnist_cnn", "cifar10_resnet"])
def test_smoke_variant_runs_end_to_end(name, tmp_path):
  summary = train(load_config(name, "smoke"), str(tmp_path))
  assert set(summary["final"]) == {"test_accuracy", "test_loss"}
  assert summary["steps"] == load_config(name, "smoke").num_steps
  for f in ("metrics.jsonl", "summary.json", "learning_curves.png"):
    assert os.path.getsize(tmp_path / f) > 0
  assert os.listdir(tmp_path / "tensorboard")
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert {r["split"] for r in records} == {"train", "eval"}
  assert json.loads((tmp_path / "summary.json").read_text())["final"] == summary["final"]


def test_tfds_path_trains_under_mock_data(tmp_path):
  def noise_labelled_5(split):
    rng = np.random.default_rng(["train", "test"].index(split))
    return [{"image": rng.integers(0, 256, (32, 32, 3), np.uint8), "label": 5} for _ in range(64)]

  with mock_tfds_splits(noise_labelled_5):
    config = load_config("mnist_cnn", "smoke", dataset="cifar10", num_steps=4)
    summary = train(config, str(tmp_path))
  # Four steps suffice to learn that every image is a 5 (loss 2.3 -> 0.06).
  assert summary["steps"] == 4 and summary["final"]["test_accuracy"] == 1.0
  assert summary["final"]["test_loss"] < 0.5


def test_fashion_cnn_trains_on_fetched_files(tmp_path):
  rng = np.random.default_rng(0)

  def noise_labelled_5(count):
    return rng.integers(0, 256, (count, 28, 28), np.uint8), np.full(count, 5, np.uint8)

  splits = {"train": noise_labelled_5(64), "test": noise_labelled_5(32)}
  write_idx_dataset(tmp_path / "data", "fashion_mnist", splits)
  config = load_config("fashion_cnn", "smoke", data_dir=str(tmp_path / "data"), num_steps=4)
  summary = train(config, str(tmp_path / "run"))
  assert summary["final"]["test_accuracy"] == 1.0  # four steps learn that every image is a 5


@pytest.mark.parametrize("placement", ["replicated", "sharded"])
def test_short_training_beats_chance_by_far(tmp_path, placement):
  summary = train(
    load_config(
      "mnist_mlp",
      "smoke",
      num_steps=150,
      data_placement=placement,
      **{"model.hidden": (64,)},
      **{"optimizer.learning_rate": 3e-3},
    ),
    str(tmp_path),
  )
  assert summary["final"]["test_accuracy"] > 0.85  # 10 classes: chance is 0.1


# ResNet-20 with one block per stage: its every kind of block (strided, projected, BatchNorm) at a
# third of the compile time.
SMALL_RESNET = {"name": "resnet20", "stage_sizes": (1, 1, 1)}
# (model, optimizer, rng, example) -> state, as one program: op by op, each op compiles alone.
jitted_init = jax.jit(init_model_state, static_argnums=(0, 1))


@pytest.mark.parametrize("model", [{"name": "cnn"}, SMALL_RESNET], ids=["cnn", "resnet"])
def test_model_overfits_one_batch(model):
  images = jax.random.uniform(jax.random.PRNGKey(0), (16, 8, 8, 1))
  batch = {"image": images, "label": jnp.arange(16) % 10}
  opt = base_config().optimizer
  opt.update({"name": "adam", "learning_rate": 3e-3, "schedule": "constant"})
  state = jitted_init(
    build_model(model, num_classes=10), make_optimizer(opt, 200), jax.random.PRNGKey(1), images[:1]
  )
  step = make_train_step(classification_loss)
  for _ in range(100):  # both pass by step 40 (the CNN by 17)
    state, metrics = step(state, batch)
  assert float(metrics["loss"]) < 0.05 and float(metrics["accuracy"]) == 1.0


def test_one_and_two_devices_compute_the_same_step():
  images = jax.random.uniform(jax.random.PRNGKey(0), (8, 8, 8, 1))
  batch = {"image": images, "label": jnp.arange(8) % 10}
  opt = base_config().optimizer
  losses = []
  for n in (1, 2):
    mesh = parallel.make_data_mesh(n)
    with jax.set_mesh(mesh):
      model = build_model(SMALL_RESNET, num_classes=10)
      state = parallel.replicate(
        jitted_init(model, make_optimizer(opt, 10), jax.random.PRNGKey(1), images[:1]), mesh
      )
      step = make_train_step(
        classification_loss, lambda feed, _: jax.tree.map(parallel.split_batch, feed)
      )
      for _ in range(3):
        state, metrics = step(state, batch)
      losses.append(
        (float(metrics["loss"]), np.asarray(state.mutable["batch_stats"]["BatchNorm_0"]["mean"]))
      )
  assert losses[0][0] == pytest.approx(losses[1][0], rel=1e-5)
  np.testing.assert_allclose(losses[0][1], losses[1][1], rtol=1e-4, atol=1e-6)
