"""A small U-Net (Ronneberger et al., 2015, as DDPM uses it) for denoising and flow matching.

It maps a noisy image x_t [N, H, W, C], its time t [N] in [0, 1] and optionally class labels
[N] to an output of x_t's shape (the noise for DDPM, the velocity for flow matching). Each
resolution level has residual blocks (GroupNorm, SiLU, 3x3 convolutions) into which a sinusoidal
embedding of t (and a learned embedding of the label) is added; stride-2 convolutions halve the
side between levels, and the decoder mirrors the encoder with skip connections. Self-attention
runs at the lowest resolution (7x7 for 28x28 images: 49 positions, cheap) and in the middle.
Label `num_classes` is the "no label" class that classifier-free guidance trains with.
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from dljax.errors import DljaxError
from dljax.models.dense import Dense


def timestep_embedding(t, dim: int) -> jnp.ndarray:
  """Sinusoidal features [N, dim] of times t [N] in [0, 1] (scaled to DDPM's 0-1000 range, where
  the transformer frequencies 1 to 1/10000 resolve neighbouring steps)."""
  half = dim // 2
  freqs = jnp.exp(-math.log(10_000.0) * jnp.arange(half) / half)
  angles = 1000.0 * t[:, None] * freqs[None]
  return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


def _norm(channels: int) -> nn.GroupNorm:
  return nn.GroupNorm(num_groups=min(8, channels))


class ResBlock(nn.Module):
  """Two 3x3 convolutions with the time (and label) embedding added in between, plus a skip."""

  features: int

  @nn.compact
  def __call__(self, x, emb):
    h = nn.Conv(self.features, (3, 3))(nn.silu(_norm(x.shape[-1])(x)))
    h = h + Dense(self.features)(nn.silu(emb))[:, None, None, :]
    h = nn.Conv(self.features, (3, 3))(nn.silu(_norm(self.features)(h)))
    if x.shape[-1] != self.features:
      x = nn.Conv(self.features, (1, 1))(x)
    return x + h


class SelfAttention(nn.Module):
  """One-head self-attention over the positions of a feature map, as a residual."""

  @nn.compact
  def __call__(self, x):
    n, h, w, c = x.shape
    y = _norm(c)(x).reshape(n, h * w, c)
    # Named as nn.SelfAttention (deprecated) named itself: checkpoints keep their parameter paths.
    attention = nn.MultiHeadDotProductAttention(
      1, qkv_features=c, out_features=c, name="SelfAttention_0"
    )
    y = attention(y)
    return x + y.reshape(n, h, w, c)


class UNet(nn.Module):
  """(x_t [N, *image_shape], t [N] in [0, 1], labels [N] or None) -> output [N, *image_shape].

  features: channels of each resolution level, the first at the image's side; each further level
  halves the side (28 -> 14 -> 7 for three levels).
  num_res_blocks: residual blocks per level in the encoder (the decoder has one more, as in DDPM).
  num_classes: 0: unconditional; else labels in [0, num_classes], num_classes meaning "none".
  """

  image_shape: Sequence[int]
  features: Sequence[int] = (32, 64, 64)
  num_res_blocks: int = 1
  num_classes: int = 0

  @nn.compact
  def __call__(self, x, t, labels=None):
    levels = len(self.features)
    side = self.image_shape[0]
    if side % 2 ** (levels - 1):
      raise DljaxError(
        f"a U-Net with {levels} levels halves the side {levels - 1} times, so it needs images "
        f"whose side is a multiple of {2 ** (levels - 1)}, got {list(self.image_shape)}; change "
        f"model.features"
      )
    emb_dim = 4 * self.features[0]
    emb = timestep_embedding(t, self.features[0])
    emb = Dense(emb_dim)(nn.silu(Dense(emb_dim)(emb)))
    if self.num_classes:
      if labels is None:
        raise ValueError("a class-conditional U-Net needs labels (num_classes: none)")
      emb = emb + nn.Embed(self.num_classes + 1, emb_dim)(labels)

    def attend(h, level):
      return SelfAttention()(h) if level == levels - 1 else h

    h = nn.Conv(self.features[0], (3, 3))(x)
    skips = [h]
    for level, width in enumerate(self.features):
      for _ in range(self.num_res_blocks):
        h = attend(ResBlock(width)(h, emb), level)
        skips.append(h)
      if level < levels - 1:
        h = nn.Conv(width, (3, 3), strides=(2, 2))(h)
        skips.append(h)
    h = ResBlock(self.features[-1])(h, emb)
    h = SelfAttention()(h)
    h = ResBlock(self.features[-1])(h, emb)
    for level in reversed(range(levels)):
      for _ in range(self.num_res_blocks + 1):
        h = ResBlock(self.features[level])(jnp.concatenate([h, skips.pop()], axis=-1), emb)
        h = attend(h, level)
      if level > 0:
        h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)  # nearest-neighbour upsampling
        h = nn.Conv(self.features[level - 1], (3, 3))(h)  # the wider level's width: cheaper
    h = nn.silu(_norm(h.shape[-1])(h))
    return nn.Conv(self.image_shape[-1], (3, 3), kernel_init=nn.initializers.zeros)(h)
