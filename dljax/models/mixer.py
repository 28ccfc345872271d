"""MLP-Mixer image classifier (Tolstikhin et al. 2021), small enough for MNIST on a CPU.

The image is cut into non-overlapping patches, each linearly embedded; every block then mixes
information across patches (an MLP over the token axis) and within each patch (an MLP over the
channel axis), both pre-LayerNorm with a residual. Global average pooling and a dense layer give
the logits. The walkthrough docs/add_a_model.md adds this module to dljax.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from dljax.errors import DljaxError
from dljax.models.dense import Dense


class MlpBlock(nn.Module):
  """Dense -> GELU -> Dense back to the input width, on the last axis."""

  hidden: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    h = nn.gelu(Dense(self.hidden, dtype=self.dtype)(x))
    return Dense(x.shape[-1], dtype=self.dtype)(h)


class MixerBlock(nn.Module):
  """Token mixing (across patches), then channel mixing (within each patch)."""

  tokens_hidden: int
  channels_hidden: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):  # x: (batch, patches, channels)
    y = nn.LayerNorm(dtype=self.dtype)(x).swapaxes(1, 2)  # (batch, channels, patches)
    x = x + MlpBlock(self.tokens_hidden, self.dtype, name="token_mixing")(y).swapaxes(1, 2)
    y = nn.LayerNorm(dtype=self.dtype)(x)
    return x + MlpBlock(self.channels_hidden, self.dtype, name="channel_mixing")(y)


class MlpMixer(nn.Module):
  """`num_blocks` Mixer blocks over `patch_size` x `patch_size` patches embedded in `width`."""

  num_classes: int  # derived from the dataset by the task
  patch_size: int = 4  # side of the square patches; must divide the image's height and width
  width: int = 64  # channels of each patch's embedding
  num_blocks: int = 4
  tokens_hidden: int = 64  # hidden units of the token-mixing MLP
  channels_hidden: int = 128  # hidden units of the channel-mixing MLP
  dtype: Any = jnp.float32  # compute dtype (dljax.models.precision); the parameters stay float32

  @nn.compact
  def __call__(self, images, train: bool = False):
    del train  # no dropout or batch statistics
    batch, height, width, channels = images.shape
    p = self.patch_size
    if height % p or width % p:
      raise DljaxError(
        f"patch_size={p} does not divide the {height}x{width} images; set "
        f"--config.model.patch_size to a divisor of both"
      )
    patches = images.reshape(batch, height // p, p, width // p, p, channels)
    patches = patches.transpose(0, 1, 3, 2, 4, 5).reshape(batch, -1, p * p * channels)
    x = Dense(self.width, dtype=self.dtype, name="patch_embedding")(patches)
    for block in range(self.num_blocks):
      x = MixerBlock(self.tokens_hidden, self.channels_hidden, self.dtype, name=f"block_{block}")(x)
    x = nn.LayerNorm(dtype=self.dtype, name="final_norm")(x).mean(axis=1)
    return Dense(self.num_classes, dtype=self.dtype, name="head")(x)
