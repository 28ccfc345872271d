"""The basics chapter's toy problems: synthetic linear and logistic regression, and two moons.

Each is generated on the host from `data_seed` (the data is part of the experiment's definition)
and returned as train and test dicts of arrays. The regressions also return the weights that
generated them, which a fit should recover; two moons comes from scikit-learn (`make_moons`,
offline). Classification problems use `classification_loss`'s keys: a 2-D point is an "image".
"""

import dataclasses

import numpy as np

from dljax.errors import unknown_name

PROBLEMS = ("linear", "logistic", "moons")


@dataclasses.dataclass(frozen=True)
class ToyData:
  train: dict[str, np.ndarray]
  test: dict[str, np.ndarray]
  true_kernel: np.ndarray | None = None  # [num_features] generating weights (regressions)
  true_bias: float | None = None

  @property
  def train_inputs(self) -> np.ndarray:
    return self.train["x" if "x" in self.train else "image"]


def _regression(
  kind: str, num_train: int, num_test: int, num_features: int, noise: float, seed: int
) -> ToyData:
  """x ~ N(0, I); y = x.w + b + noise * N(0, 1) (linear) or ~ Bernoulli(sigmoid(x.w + b))."""
  rng = np.random.default_rng(seed)
  kernel, bias = rng.normal(size=num_features), float(rng.normal())
  x = rng.normal(size=(num_train + num_test, num_features))
  z = x @ kernel + bias
  if kind == "linear":
    y = z + noise * rng.normal(size=z.shape)
  else:
    y = (rng.uniform(size=z.shape) < 1 / (1 + np.exp(-z))).astype(np.float64)
  x, y = x.astype(np.float32), y.astype(np.float32)
  return ToyData(
    {"x": x[:num_train], "y": y[:num_train]},
    {"x": x[num_train:], "y": y[num_train:]},
    kernel.astype(np.float32),
    bias,
  )


def _moons(num_train: int, num_test: int, noise: float, seed: int) -> ToyData:
  from sklearn.datasets import make_moons

  points, labels = make_moons(num_train + num_test, noise=noise, random_state=seed)
  points, labels = points.astype(np.float32), labels.astype(np.int32)
  return ToyData(
    {"image": points[:num_train], "label": labels[:num_train]},
    {"image": points[num_train:], "label": labels[num_train:]},
  )


def load_toy_data(
  problem: str, num_train: int, num_test: int, num_features: int, noise: float, seed: int
) -> ToyData:
  if problem not in PROBLEMS:
    raise unknown_name("basics problem", problem, PROBLEMS)
  if problem == "moons":
    return _moons(num_train, num_test, noise, seed)
  return _regression(problem, num_train, num_test, num_features, noise, seed)
