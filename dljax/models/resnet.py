"""CIFAR-style ResNets with BatchNorm: ResNet-20 (He et al. 2016, 3 stages) and ResNet-18.

Both use a 3x3 stem without max-pooling, as is usual for 32x32 inputs; they work for any input
size (28x28 MNIST, 8x8 digits) because the head is global average pooling.
"""

from collections.abc import Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

from dljax.models.dense import Dense


def _stored(x):
  """`x` itself, bit for bit, in a form XLA computes once and keeps in memory.

  Each convolution's weight gradient reads the convolution's input batch-minor, through a
  transpose. XLA:CPU fuses the BatchNorm + ReLU (+ residual add) that produced that input into
  the transpose, recomputing the chain there (recursively through the residual adds) in a loop
  several times slower than a transpose of the stored array: in ResNet-20's step those transposes
  took more time than the convolutions (docs/benchmarks.md). XLA does not duplicate a division
  into its users, so dividing by a 1 that it cannot fold away keeps the activation stored and
  the transposes plain. The quotient is `x` for every finite `x`; the gradient passes unchanged.
  """
  return x / lax.stop_gradient(1.0 + 0.0 * x)


class BasicBlock(nn.Module):
  features: int
  strides: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    norm = partial(
      nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype
    )
    conv = partial(nn.Conv, use_bias=False, dtype=self.dtype)
    residual = x
    y = conv(self.features, (3, 3), self.strides)(x)
    y = _stored(nn.relu(norm()(y)))
    y = conv(self.features, (3, 3))(y)
    # Zero-init the last BN scale so every block starts as the identity (Goyal et al. 2017).
    y = norm(scale_init=nn.initializers.zeros)(y)
    if residual.shape != y.shape:
      residual = conv(self.features, (1, 1), self.strides)(residual)
      residual = norm()(residual)
    return _stored(nn.relu(residual + y))


class ResNet(nn.Module):
  """`dtype` is the compute dtype; parameters and BatchNorm statistics stay float32."""

  num_classes: int
  stage_sizes: Sequence[int]
  stage_features: Sequence[int]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.Conv(self.stage_features[0], (3, 3), use_bias=False, dtype=self.dtype)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype)(x)
    x = _stored(nn.relu(x))
    for stage, (blocks, features) in enumerate(zip(self.stage_sizes, self.stage_features)):
      for block in range(blocks):
        strides = 2 if stage > 0 and block == 0 else 1
        x = BasicBlock(features, strides, self.dtype)(x, train)
    return Dense(self.num_classes, dtype=self.dtype)(jnp.mean(x, axis=(1, 2)))


ResNet20 = partial(ResNet, stage_sizes=(3, 3, 3), stage_features=(16, 32, 64))
ResNet18 = partial(ResNet, stage_sizes=(2, 2, 2, 2), stage_features=(64, 128, 256, 512))
