"""Variational autoencoders (Kingma & Welling, 2014) for binarized images: MLP and convolutional.

Both map images [N, H, W, C] to a diagonal Gaussian posterior q(z|x) = N(mean, exp(logvar)) over
`latent_dim` latents (`encode`) and latents [N, latent_dim] to Bernoulli logits [N, H, W, C]
(`decode`). `__call__(x, rng)` draws one z by the reparameterisation trick from the explicit key
`rng` and returns `(logits, mean, logvar)`. The objectives live in dljax/tasks/vae.py.
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dljax.errors import DljaxError
from dljax.models.cnn import ShiftConv
from dljax.models.dense import Dense


def reparameterize(rng, mean, logvar):
  """z = mean + std * eps, eps ~ N(0, I): a sample of q(z|x) differentiable in mean and logvar."""
  return mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mean.shape, mean.dtype)


class _VAE(nn.Module):
  """What both VAEs share: the latent-size check and the sampling forward pass."""

  def __post_init__(self):
    if self.latent_dim < 1:
      raise DljaxError(
        f"latent_dim={self.latent_dim}: a VAE needs at least one latent; set "
        f"--config.model.latent_dim to 1 or more (20 is the usual MNIST size)"
      )
    super().__post_init__()

  def __call__(self, x, rng):
    mean, logvar = self.encode(x)
    return self.decode(reparameterize(rng, mean, logvar)), mean, logvar


class MLPVAE(_VAE):
  """The Flax VAE example's network: flattened image -> `hidden` ReLU -> mean, logvar; z ->
  `hidden` ReLU -> one logit per pixel (784-500-20 on MNIST)."""

  image_shape: Sequence[int]
  latent_dim: int = 20
  hidden: int = 500

  def setup(self):
    self.encoder_hidden = Dense(self.hidden)
    self.encoder_mean = Dense(self.latent_dim)
    self.encoder_logvar = Dense(self.latent_dim)
    self.decoder_hidden = Dense(self.hidden)
    self.decoder_logits = Dense(math.prod(self.image_shape))

  def encode(self, x):
    h = nn.relu(self.encoder_hidden(x.reshape(x.shape[0], -1)))
    return self.encoder_mean(h), self.encoder_logvar(h)

  def decode(self, z):
    logits = self.decoder_logits(nn.relu(self.decoder_hidden(z)))
    return logits.reshape(z.shape[0], *self.image_shape)


def space_to_depth(x):
  """[N, H, W, C] -> [N, H/2, W/2, 4C]: each 2x2 block of pixels becomes one pixel's channels."""
  n, h, w, c = x.shape
  x = x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h // 2, w // 2, 4 * c)


def depth_to_space(x):
  """The inverse of `space_to_depth`: [N, H, W, 4C] -> [N, 2H, 2W, C] (a sub-pixel upsampling)."""
  n, h, w, c4 = x.shape
  x = x.reshape(n, h, w, 2, 2, c4 // 4).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, 2 * h, 2 * w, c4 // 4)


class ConvVAE(_VAE):
  """Convolutional VAE. Encoder: per entry of `features`, a 2x downsampling (space-to-depth, 2x2
  pixel blocks into channels) and a 3x3 conv with ReLU; then a `hidden` ReLU layer, mean and
  logvar. Decoder, mirrored: dense layers to the smallest feature map, then per stage a 3x3 conv
  to 4x the channels and a 2x upsampling (depth-to-space, the sub-pixel convolution of Shi et al.,
  2016), ending in one logit per pixel. Every conv is a stride-1 `ShiftConv` (a matmul): on
  XLA:CPU, stride-2 `nn.Conv`/`nn.ConvTranspose` made a training step ~15x slower than the MLP's.
  Height and width must be divisible by 2 ** len(features).
  """

  image_shape: Sequence[int]
  latent_dim: int = 20
  features: Sequence[int] = (32, 64)
  hidden: int = 256

  def __post_init__(self):
    factor = 2 ** len(self.features)
    height, width = self.image_shape[:2]
    if height % factor or width % factor:
      raise DljaxError(
        f"the conv VAE with {len(self.features)} downsampling stages needs images whose height "
        f"and width are multiples of {factor}, got shape {tuple(self.image_shape)}; use fewer "
        f"stages (--config.model.features) or the MLP VAE (--config.model.name=vae_mlp)"
      )
    super().__post_init__()

  def setup(self):
    factor = 2 ** len(self.features)
    self.bottom_shape = (
      self.image_shape[0] // factor,
      self.image_shape[1] // factor,
      self.features[-1],
    )
    self.encoder_convs = [ShiftConv(f) for f in self.features]
    self.encoder_hidden = Dense(self.hidden)
    self.encoder_mean = Dense(self.latent_dim)
    self.encoder_logvar = Dense(self.latent_dim)
    self.decoder_hidden = Dense(self.hidden)
    self.decoder_bottom = Dense(math.prod(self.bottom_shape))
    # Mirror of the encoder: widths features[-2], ..., features[0], then the image channels.
    widths = [*self.features[-2::-1], self.image_shape[-1]]
    self.decoder_convs = [ShiftConv(4 * f) for f in widths]

  def encode(self, x):
    for conv in self.encoder_convs:
      x = nn.relu(conv(space_to_depth(x)))
    h = nn.relu(self.encoder_hidden(x.reshape(x.shape[0], -1)))
    return self.encoder_mean(h), self.encoder_logvar(h)

  def decode(self, z):
    h = nn.relu(self.decoder_bottom(nn.relu(self.decoder_hidden(z))))
    x = h.reshape(z.shape[0], *self.bottom_shape)
    for i, conv in enumerate(self.decoder_convs):
      x = depth_to_space(conv(x))
      if i < len(self.decoder_convs) - 1:
        x = nn.relu(x)
    return x
