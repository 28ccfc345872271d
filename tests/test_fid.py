"""fid_mnist_cnn: the Fréchet distance against SciPy, and the CNN features of a real smoke run."""

import os

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from conftest import config_path, run_module

from dljax.checkpoint import Checkpointer
from dljax.data import load_image_dataset
from dljax.errors import DljaxError
from dljax.models import build_model
from dljax.tasks.fid import (
  feature_stats,
  fid_mnist_cnn,
  frechet_distance,
  load_feature_extractor,
  make_sample_scorer,
  real_vs_real_fid,
)


def random_gaussian(rng, d, rank=None):
  a = rng.normal(size=(d, rank or d))
  return rng.normal(size=d), a @ a.T


def scipy_frechet_distance(mu1, sigma1, mu2, sigma2):
  """The textbook formula, with scipy's general matrix square root."""
  return (
    (mu1 - mu2) @ (mu1 - mu2)
    + np.trace(sigma1)
    + np.trace(sigma2)
    - 2 * np.trace(scipy.linalg.sqrtm(sigma1 @ sigma2).real)
  )


@pytest.mark.parametrize("d", [1, 5, 64])
def test_frechet_distance_matches_scipy_sqrtm(d):
  rng = np.random.default_rng(d)
  (mu1, sigma1), (mu2, sigma2) = random_gaussian(rng, d), random_gaussian(rng, d)
  expected = scipy_frechet_distance(mu1, sigma1, mu2, sigma2)
  assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8)
  assert frechet_distance(mu2, sigma2, mu1, sigma1) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_of_one_dimensional_gaussians_is_closed_form():
  # (m1 - m2)^2 + (s1 - s2)^2 for standard deviations s1, s2.
  assert frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(9 + 1)


def test_singular_covariances_give_a_finite_real_distance():
  # Rank 3 in 32 dimensions (more dimensions than samples, or dead ReLU features).
  rng = np.random.default_rng(0)
  (mu1, sigma1), (mu2, sigma2) = random_gaussian(rng, 32, 3), random_gaussian(rng, 32, 3)
  distance = frechet_distance(mu1, sigma1, mu2, sigma2)
  assert np.isfinite(distance)
  assert distance == pytest.approx(scipy_frechet_distance(mu1, sigma1, mu2, sigma2), rel=1e-4)
  assert abs(frechet_distance(mu1, sigma1, mu1, sigma1)) < 1e-8 * np.trace(sigma1)


def test_a_set_against_itself_is_zero_and_shifts_add_their_squared_norm():
  features = np.random.default_rng(1).normal(size=(200, 16)) ** 2  # skewed, like ReLU outputs
  mu, sigma = feature_stats(features)
  assert mu.shape == (16,) and sigma.shape == (16, 16)
  assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9 * np.trace(sigma)
  shifted = feature_stats(features + 0.5)
  assert frechet_distance(*shifted, mu, sigma) == pytest.approx(16 * 0.25)


def test_bad_stats_are_named():
  with pytest.raises(DljaxError, match="N >= 2"):
    feature_stats(np.zeros((1, 4)))
  with pytest.raises(DljaxError, match="same extractor"):
    frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  """A tiny CNN classifier on the 8x8 `digits`, trained through the real CLI."""
  workdir = tmp_path_factory.mktemp("cnn")
  out = run_module(
    "experiments.train",
    f"--config={config_path('mnist_cnn')}:smoke",
    f"--workdir={workdir}",
    "--config.quiet=True",
  )
  assert out.returncode == 0, out.stderr
  return str(workdir)


@pytest.fixture(scope="module")
def digits():
  return load_image_dataset("digits")


def test_features_are_the_input_of_the_logits_layer(smoke_run, digits):
  extractor = load_feature_extractor(smoke_run, batch_size=7)  # 20 images: 3 batches, 1 padded
  images = digits.test_images[:20]
  features = extractor(images)
  assert extractor.image_shape == (8, 8, 1) and features.shape == (20, 32)
  checkpointer = Checkpointer(os.path.join(smoke_run, "checkpoints"), {})
  params = checkpointer.restore_raw(checkpointer.latest_step())["params"]
  model = build_model(
    {"name": "cnn", "features": (8,), "dense": 32, "conv": "shift"}, num_classes=10
  )
  logits = model.apply({"params": params}, jnp.asarray(images))
  head = params["Dense_1"]
  np.testing.assert_allclose(features @ head["kernel"] + head["bias"], logits, atol=1e-4)
  np.testing.assert_allclose(load_feature_extractor(smoke_run)(images), features, atol=1e-5)


def test_fid_orders_self_real_and_noise(smoke_run, digits):
  extractor = load_feature_extractor(smoke_run)
  reference = feature_stats(extractor(digits.test_images))
  scale = np.trace(reference[1])
  assert abs(fid_mnist_cnn(extractor, digits.test_images, reference)) < 1e-6 * scale
  floor = real_vs_real_fid(extractor, digits)
  noise = np.random.default_rng(0).uniform(size=digits.test_images.shape)
  assert 0 < floor < fid_mnist_cnn(extractor, noise, reference) / 5


def test_sample_scorer_scores_against_test_images_and_reports_the_floor(smoke_run, digits):
  assert make_sample_scorer("", digits) == (None, None)
  score, final_extras = make_sample_scorer(smoke_run, digits)
  extractor = load_feature_extractor(smoke_run)
  reference = feature_stats(extractor(digits.test_images))
  images = digits.train_images[:50]
  scores = score(images)
  assert scores["fid_mnist_cnn"] == pytest.approx(
    fid_mnist_cnn(extractor, images, reference), rel=1e-6
  )
  # The class shares are those of the classifier's own predictions (argmax of its logits).
  model = build_model(
    {"name": "cnn", "features": (8,), "dense": 32, "conv": "shift"}, num_classes=10
  )
  checkpointer = Checkpointer(os.path.join(smoke_run, "checkpoints"), {})
  params = checkpointer.restore_raw(checkpointer.latest_step())["params"]
  shares = np.bincount(np.argmax(model.apply({"params": params}, images), 1), minlength=10) / 50
  assert (scores["min_class_share"], scores["max_class_share"]) == (shares.min(), shares.max())
  floor = real_vs_real_fid(extractor, digits, reference)
  assert floor == pytest.approx(
    fid_mnist_cnn(extractor, digits.train_images[:360], reference), rel=1e-6
  )
  assert final_extras(None, 10, 1.0) == {
    "fid_mnist_cnn_real_vs_real": pytest.approx(floor, rel=1e-6)
  }


def test_missing_run_names_the_command_and_creates_nothing(tmp_path):
  workdir = tmp_path / "runs" / "mnist_cnn"
  with pytest.raises(
    DljaxError,
    match="python -m experiments.train --config "
    "experiments/configs/mnist_cnn.py --workdir .*mnist_cnn",
  ):
    load_feature_extractor(str(workdir))
  assert not workdir.exists()


def test_a_run_that_is_not_a_classifier_is_refused(tmp_path):
  Checkpointer(str(tmp_path / "checkpoints"), {"task": "language_model", "model": {}}).save(
    1, {"params": {"w": jnp.zeros(2)}}, wait=True
  )
  with pytest.raises(DljaxError, match="language_model run, not an image classifier"):
    load_feature_extractor(str(tmp_path))


def test_images_the_classifier_cannot_take_are_named(smoke_run):
  extractor = load_feature_extractor(smoke_run)
  with pytest.raises(DljaxError, match=r"shape \[N, 8, 8, 1\], got \[3, 28, 28, 1\]"):
    extractor(np.zeros((3, 28, 28, 1)))
  with pytest.raises(DljaxError, match=r"\(x \+ 1\) / 2"):
    extractor(np.full((3, 8, 8, 1), -1.0))
