"""Variational autoencoders (Kingma & Welling, 2014) for binarized images: MLP and convolutional.

Both map images [N, H, W, C] to a diagonal Gaussian posterior q(z|x) = N(mean, exp(logvar)) over
`latent_dim` latents (`encode`) and latents [N, latent_dim] to Bernoulli logits [N, H, W, C]
(`decode`). `__call__(x, rng)` draws one z by the reparameterisation trick from the explicit key
`rng` and returns `(logits, mean, logvar)`. The objectives live in dljax/tasks/vae.py.
"""

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dljax.errors import DljaxError


def reparameterize(rng, mean, logvar):
  """z = mean + std * eps, eps ~ N(0, I): a sample of q(z|x) differentiable in mean and logvar."""
  return mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, mean.shape, mean.dtype)


class _VAE(nn.Module):
  """What both VAEs share: the latent-size check and the sampling forward pass."""

  def __post_init__(self):
    if self.latent_dim < 1:
      raise DljaxError(f"latent_dim={self.latent_dim}: a VAE needs at least one latent; set "
                       f"--config.model.latent_dim to 1 or more (20 is the usual MNIST size)")
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
    self.encoder_hidden = nn.Dense(self.hidden)
    self.encoder_mean = nn.Dense(self.latent_dim)
    self.encoder_logvar = nn.Dense(self.latent_dim)
    self.decoder_hidden = nn.Dense(self.hidden)
    self.decoder_logits = nn.Dense(math.prod(self.image_shape))

  def encode(self, x):
    h = nn.relu(self.encoder_hidden(x.reshape(x.shape[0], -1)))
    return self.encoder_mean(h), self.encoder_logvar(h)

  def decode(self, z):
    logits = self.decoder_logits(nn.relu(self.decoder_hidden(z)))
    return logits.reshape(z.shape[0], *self.image_shape)


class ConvVAE(_VAE):
  """Convolutional VAE: one stride-2 3x3 conv stage per entry of `features` (each halves the
  side), a `hidden` ReLU layer, then mean and logvar; the decoder mirrors it with stride-2
  transposed convolutions. Height and width must be divisible by 2 ** len(features)."""

  image_shape: Sequence[int]
  latent_dim: int = 20
  features: Sequence[int] = (32, 64)
  hidden: int = 256

  def __post_init__(self):
    factor = 2 ** len(self.features)
    height, width = self.image_shape[:2]
    if height % factor or width % factor:
      raise DljaxError(
          f"the conv VAE with {len(self.features)} stride-2 stages needs images whose height and "
          f"width are multiples of {factor}, got shape {tuple(self.image_shape)}; use fewer "
          f"stages (--config.model.features) or the MLP VAE (--config.model.name=vae_mlp)")
    super().__post_init__()

  def setup(self):
    factor = 2 ** len(self.features)
    self.bottom_shape = (self.image_shape[0] // factor, self.image_shape[1] // factor,
                         self.features[-1])
    self.encoder_convs = [nn.Conv(f, (3, 3), strides=2) for f in self.features]
    self.encoder_hidden = nn.Dense(self.hidden)
    self.encoder_mean = nn.Dense(self.latent_dim)
    self.encoder_logvar = nn.Dense(self.latent_dim)
    self.decoder_hidden = nn.Dense(self.hidden)
    self.decoder_bottom = nn.Dense(math.prod(self.bottom_shape))
    # Mirror of the encoder: widths features[-2], ..., features[0], then the image channels.
    widths = [*self.features[-2::-1], self.image_shape[-1]]
    self.decoder_convs = [nn.ConvTranspose(f, (3, 3), strides=(2, 2)) for f in widths]

  def encode(self, x):
    for conv in self.encoder_convs:
      x = nn.relu(conv(x))
    h = nn.relu(self.encoder_hidden(x.reshape(x.shape[0], -1)))
    return self.encoder_mean(h), self.encoder_logvar(h)

  def decode(self, z):
    h = nn.relu(self.decoder_bottom(nn.relu(self.decoder_hidden(z))))
    x = h.reshape(z.shape[0], *self.bottom_shape)
    for i, conv in enumerate(self.decoder_convs):
      x = conv(x)
      if i < len(self.decoder_convs) - 1:
        x = nn.relu(x)
    return x
