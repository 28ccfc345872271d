"""DCGAN's generator and discriminator (Radford et al., 2016) for small square images.

The generator maps a latent vector to an image in [-1, 1]: a dense projection to a
`side / 2**stages` square map, then transposed convolutions, the last `stages` of them stride 2
(each doubles the side) and any before them stride 1 (BatchNorm + ReLU after each but the last,
tanh at the end). The discriminator mirrors it: convolutions, the first `stages` stride 2 (each
halves the side), LeakyReLU(0.2), BatchNorm after all but the first, then one logit. With two
stages they take 28x28x1 (MNIST, Fashion-MNIST) and 32x32x3 (CIFAR-10).
"""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

from dljax.errors import DljaxError
from dljax.models.dense import Dense
from dljax.models.vae import depth_to_space

# Momentum of the BatchNorm running statistics used for sampling: the generator changes quickly,
# and flax's default 0.99 would average over ~100 steps of stale networks (PyTorch's is 0.9).
BATCH_NORM_MOMENTUM = 0.9


class ConvTranspose2x(nn.Module):
  """`nn.ConvTranspose(features, (4, 4), strides=(2, 2))` (padding 'SAME': doubles the side),
  computed as four 2x2 stride-1 convolutions, one per output pixel phase, interleaved.

  Same parameters, initialisation and output as the flax module. The transposed convolution's
  weight gradient is a convolution of a zero-dilated input, which XLA:CPU runs on a slow path
  (~8x-15x this module's forward + backward on DCGAN's layers; docs/benchmarks.md).
  """

  features: int
  use_bias: bool = True

  @nn.compact
  def __call__(self, x):
    kernel = self.param(
      "kernel", nn.initializers.lecun_normal(), (4, 4, x.shape[-1], self.features)
    )
    # Output row 2m + p (phase p) reads input rows m - 1 + p and m + p through kernel rows p
    # and p + 2 (the same for columns): a 2x2 kernel, padded before for phase 0, after for 1.
    pads = ((1, 0), (0, 1))

    def phase(p, q):
      return lax.conv_general_dilated(
        x,
        kernel[p::2, q::2],
        (1, 1),
        (pads[p], pads[q]),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
      )

    # Phases (0, 0), (0, 1), (1, 0), (1, 1) as channel blocks: the sub-pixel layout.
    y = depth_to_space(jnp.concatenate([phase(p, q) for p in (0, 1) for q in (0, 1)], axis=-1))
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros_init(), (self.features,))
    return y


def check_image_shape(image_shape: Sequence[int], stages: int):
  """Raises a one-line error unless a `stages`-stage DCGAN can produce/read `image_shape`."""
  image_shape = tuple(image_shape)
  factor = 2**stages
  if (
    len(image_shape) != 3
    or image_shape[0] != image_shape[1]
    or image_shape[0] % factor
    or image_shape[0] < factor
    or image_shape[2] not in (1, 3)
  ):
    raise DljaxError(
      f"a DCGAN with {stages} stages needs square images [H, H, C] with H a multiple of "
      f"{factor} and C 1 or 3 (e.g. 28x28x1 mnist5k/fashion_mnist, 32x32x3 cifar10), got "
      f"{list(image_shape)}; pick such a dataset or change the number of model.features"
    )


def conv_strides(num_convs: int, stages: int) -> list[int]:
  """Stride 1, then 2 for the last `stages` of `num_convs` convolutions (0: all stride 2)."""
  stages = stages or num_convs
  if not 1 <= stages <= num_convs:
    raise DljaxError(
      f"stages={stages} is invalid: it must be between 1 and the {num_convs} convolutions the "
      f"features make (0: all of them); set model.stages"
    )
  return [1] * (num_convs - stages) + [2] * stages


class Generator(nn.Module):
  """z [N, latent_dim] -> images [N, *image_shape] in [-1, 1].

  features: channels of the feature maps, from the projected one (widest) upwards; each further
  entry and the output add one 4x4 transposed convolution. stages: how many of those double the
  side (the last ones; 0: all).
  """

  image_shape: Sequence[int]
  latent_dim: int = 64
  features: Sequence[int] = (128, 64)
  stages: int = 0

  @nn.compact
  def __call__(self, z, train: bool = False):
    strides = conv_strides(len(self.features), self.stages)
    check_image_shape(self.image_shape, strides.count(2))
    side, channels = self.image_shape[0] // 2 ** strides.count(2), self.image_shape[2]

    def norm_relu(x):
      x = nn.BatchNorm(use_running_average=not train, momentum=BATCH_NORM_MOMENTUM)(x)
      return nn.relu(x)

    x = Dense(side * side * self.features[0], use_bias=False)(z)
    x = norm_relu(x.reshape(z.shape[0], side, side, self.features[0]))
    for width, stride in zip(self.features[1:], strides, strict=False):
      if stride == 2:
        x = ConvTranspose2x(width, use_bias=False)(x)
      else:
        x = nn.ConvTranspose(width, (4, 4), use_bias=False)(x)
      x = norm_relu(x)
    return jnp.tanh(ConvTranspose2x(channels)(x))


class Discriminator(nn.Module):
  """images [N, *image_shape] in [-1, 1] -> logits [N] of "real".

  features: channels of each 4x4 convolution; no BatchNorm after the first one, as in DCGAN.
  stages: how many of them halve the side (the first ones, stride 2; 0: all).
  """

  image_shape: Sequence[int]
  features: Sequence[int] = (64, 128)
  stages: int = 0

  @nn.compact
  def __call__(self, x, train: bool = False):
    strides = conv_strides(len(self.features), self.stages)[::-1]
    check_image_shape(self.image_shape, strides.count(2))
    for i, (width, stride) in enumerate(zip(self.features, strides, strict=True)):
      x = nn.Conv(width, (4, 4), strides=(stride, stride), use_bias=i == 0)(x)
      if i:
        x = nn.BatchNorm(use_running_average=not train, momentum=BATCH_NORM_MOMENTUM)(x)
      x = nn.leaky_relu(x, 0.2)
    return Dense(1)(x.reshape(x.shape[0], -1))[:, 0]
