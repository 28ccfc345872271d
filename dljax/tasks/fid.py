"""Sample quality of generated digits: a Fréchet distance in the feature space of dljax's own CNN.

FID (Heusel et al., 2017) compares Gaussians fitted to the features of two image sets. The usual
features are Inception-v3's, whose weights cannot be downloaded here; these are the penultimate
activations (the input of the logits layer) of the `mnist_cnn` classifier, so the figures are
called `fid_mnist_cnn` and compare only with each other, never with published FIDs. They depend
on the classifier run too: compare figures computed with one run directory.

  extractor = load_feature_extractor("runs/mnist_cnn")
  reference = feature_stats(extractor(test_images))
  fid_mnist_cnn(extractor, generated_images, reference)

Generative tasks score as many samples as the test split has images against the test images'
features (`make_sample_scorer`), and read the figure against `real_vs_real_fid` (as many real
train digits against the same test features): the distance that finite samples of one
distribution already have. The classifier's predictions of the samples give the share of each
class, whose smallest value shows mode collapse as a number.
"""

import math
import os
from collections.abc import Callable

import jax
import numpy as np

from dljax.checkpoint import Checkpointer
from dljax.errors import DljaxError
from dljax.models import build_model


def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
  """Mean [D] and covariance [D, D] (unbiased, float64) of `features` [N, D]."""
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or features.shape[0] < 2:
    raise DljaxError(
      f"feature_stats needs features of shape [N, D] with N >= 2, got "
      f"{features.shape}; pass a batch of at least 2 images"
    )
  return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)) between two Gaussians.

  tr((sigma1 sigma2)^(1/2)) is computed as the sum of the square roots of the eigenvalues of the
  symmetric matrix sigma1^(1/2) sigma2 sigma1^(1/2) (the same eigenvalues as sigma1 sigma2):
  symmetric eigendecompositions stay real, and the rounding noise (negative eigenvalues
  included) that singular covariances get (dead ReLU features, fewer samples than dimensions)
  is set to 0, where `scipy.linalg.sqrtm` returns complex parts and needs an ad hoc offset.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  d = len(mu1)
  if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
    raise DljaxError(
      f"frechet_distance needs means [D] and covariances [D, D] of one D, got "
      f"{mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}; compute both "
      f"with feature_stats on features of the same extractor"
    )
  sqrt_sigma1 = _psd_sqrt(sigma1)
  product_eigenvalues = np.linalg.eigvalsh(_symmetric(sqrt_sigma1 @ sigma2 @ sqrt_sigma1))
  trace_sqrt_product = np.sqrt(_nonnegative(product_eigenvalues)).sum()
  diff = mu1 - mu2
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product)


def _symmetric(a):
  return (a + a.T) / 2


def _nonnegative(eigenvalues):
  """Eigenvalues of a PSD matrix with rounding noise set to 0.

  A zero eigenvalue comes out of eigh as +-(D * eps * the largest one); its square root would be
  sqrt(eps) times larger, enough to make the distance of a set to itself 1e-7 of its scale.
  """
  noise = len(eigenvalues) * np.finfo(np.float64).eps * np.abs(eigenvalues).max(initial=0)
  return np.where(eigenvalues > noise, eigenvalues, 0)


def _psd_sqrt(a):
  """The symmetric square root of a positive semi-definite matrix."""
  eigenvalues, eigenvectors = np.linalg.eigh(_symmetric(a))
  return (eigenvectors * np.sqrt(_nonnegative(eigenvalues))) @ eigenvectors.T


class FeatureExtractor:
  """images [N, H, W, C] in [0, 1] -> penultimate features [N, D] of a trained CNN classifier.

  Jitted on batches of `batch_size` (the last one padded), so any N compiles once.
  """

  def __init__(
    self, model, variables, image_shape: tuple[int, ...], workdir: str, batch_size: int = 500
  ):
    self.image_shape = image_shape
    self.workdir = workdir
    self.batch_size = batch_size

    self._variables = variables

    @jax.jit
    def features(variables, batch):
      _, state = model.apply(variables, batch, mutable=["intermediates"])
      return state["intermediates"]["features"][0]

    self._features = features

  def predicted_classes(self, features) -> np.ndarray:
    """The classifier's class for each image, from its features [N, D] (the logits' input)."""
    head = self._variables["params"]["Dense_1"]
    logits = np.asarray(features) @ np.asarray(head["kernel"]) + np.asarray(head["bias"])
    return np.argmax(logits, axis=1)

  @property
  def num_classes(self) -> int:
    return self._variables["params"]["Dense_1"]["bias"].shape[0]

  def __call__(self, images) -> np.ndarray:
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[1:] != self.image_shape:
      raise DljaxError(
        f"the classifier in {self.workdir} takes images of shape "
        f"[N, {', '.join(map(str, self.image_shape))}], got {list(images.shape)}; "
        f"generate images of that shape or use a classifier trained on them"
      )
    if images.size and (images.min() < 0 or images.max() > 1):
      raise DljaxError(
        f"images must be in [0, 1], got values in [{images.min():.3g}, "
        f"{images.max():.3g}]; map a tanh output x to (x + 1) / 2"
      )
    n = len(images)
    padded = np.zeros((-(-n // self.batch_size) * self.batch_size, *self.image_shape), np.float32)
    padded[:n] = images
    batches = padded.reshape(-1, self.batch_size, *self.image_shape)
    return np.concatenate([np.asarray(self._features(self._variables, b)) for b in batches])[:n]


def load_feature_extractor(workdir: str, batch_size: int = 500) -> FeatureExtractor:
  """The feature extractor of the newest checkpoint of a `cnn` classifier run in `workdir`."""
  train = (
    f"python -m experiments.train --config experiments/configs/mnist_cnn.py --workdir {workdir}"
  )
  directory = os.path.join(workdir, "checkpoints")
  # Checked before Checkpointer, which would create the directory.
  checkpointer = Checkpointer(directory, {}) if os.path.isdir(directory) else None
  step = checkpointer.latest_step() if checkpointer else None
  if step is None:
    raise DljaxError(f"no classifier checkpoint in {directory}; train one first: {train}")
  identity = checkpointer.read_meta(step).get("identity", {})
  if identity.get("task") != "classification":
    raise DljaxError(
      f"{workdir} holds a {identity.get('task')} run, not an image classifier; "
      f"point it at an mnist_cnn run, made by: {train}"
    )
  if identity["model"]["name"] != "cnn":
    raise DljaxError(
      f"{workdir} holds a {identity['model']['name']} classifier; fid_mnist_cnn "
      f"needs a cnn one, made by: {train}"
    )
  raw = checkpointer.restore_raw(step)
  params = raw["params"]
  model = build_model(identity["model"], num_classes=params["Dense_1"]["bias"].shape[0])
  variables = {"params": params, **(raw.get("mutable") or {})}
  return FeatureExtractor(model, variables, _input_shape(model, params), workdir, batch_size)


def _input_shape(model, params) -> tuple[int, int, int]:
  """The (square) image shape the classifier was trained on, from its parameter shapes.

  Each conv stage halves the side (rounding down), so the smallest side that gives the first
  dense layer's input size is the final side times 2 ** stages: 28 for MNIST, 8 for `digits`.
  """
  first_conv = params["Conv_0"] if "Conv_0" in params else params["ShiftConv_0"]
  channels = first_conv["kernel"].shape[2]
  final_area = params["Dense_0"]["kernel"].shape[0] // model.features[-1]
  final_side = math.isqrt(final_area)
  if final_side**2 != final_area:
    raise DljaxError(
      "the classifier was trained on non-square images, which fid does not "
      "support; train mnist_cnn on a square-image dataset (mnist5k, mnist)"
    )
  side = final_side * 2 ** len(model.features)
  return side, side, channels


def real_vs_real_fid(extractor: FeatureExtractor, data, reference_stats=None) -> float:
  """fid_mnist_cnn of as many real train images of `data` (an ImageDataset, the first ones) as it
  has test images, against its test images (or `reference_stats`, their feature_stats): the floor
  that sample sizes alone give, against which a model's figure is read."""
  if reference_stats is None:
    reference_stats = feature_stats(extractor(data.test_images))
  return fid_mnist_cnn(extractor, data.train_images[: len(data.test_images)], reference_stats)


def fid_mnist_cnn(extractor: FeatureExtractor, images, reference_stats) -> float:
  """Fréchet distance between the features of `images` and `reference_stats` (feature_stats of
  the reference images' features, computed once with the same extractor)."""
  return frechet_distance(*feature_stats(extractor(images)), *reference_stats)


def make_sample_scorer(classifier_workdir: str, data) -> tuple[Callable | None, Callable | None]:
  """What a generative task needs: `score(images)`, the metrics of images [N, H, W, C] in [0, 1]
  (score as many as `data`, an ImageDataset, has test images): `fid_mnist_cnn` against its test
  images, and the smallest and largest share of a class among the classifier's predictions; and
  the loop's `final_extras` reporting the real-vs-real floor (`real_vs_real_fid`). `(None, None)`
  when `classifier_workdir` is '' (no FID)."""
  if not classifier_workdir:
    return None, None
  extractor = load_feature_extractor(classifier_workdir)
  if extractor.image_shape != data.image_shape:
    raise DljaxError(
      f"the FID classifier in {classifier_workdir} reads images of shape "
      f"{list(extractor.image_shape)} but {data.name} has {list(data.image_shape)}; point "
      f"--config.fid_classifier_workdir at a classifier of such images, or '' for no FID"
    )
  reference = feature_stats(extractor(data.test_images))
  floor = real_vs_real_fid(extractor, data, reference)

  def score(images) -> dict[str, float]:
    features = extractor(images)
    classes = extractor.predicted_classes(features)
    shares = np.bincount(classes, minlength=extractor.num_classes) / len(classes)
    return {
      "fid_mnist_cnn": frechet_distance(*feature_stats(features), *reference),
      "min_class_share": float(shares.min()),
      "max_class_share": float(shares.max()),
    }

  return score, lambda state, steps_run, seconds: {"fid_mnist_cnn_real_vs_real": floor}
