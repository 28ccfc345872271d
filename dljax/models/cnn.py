"""Small convolutional classifier (conv-relu-pool stages, then a dense head) for any image size."""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from dljax.errors import unknown_name
from dljax.models.dense import Dense

CONVS = ("flax", "shift")
POOLS = ("max", "avg")


class ShiftConv(nn.Module):
  """A stride-1 'SAME' convolution as im2col: zero-pad, k*k shifted slices, concat, one matmul.

  Same parameters (kernel (k, k, in, out) and bias), initialisation and output as
  `nn.Conv(features, (k, k))`. On XLA:CPU it runs faster than `nn.Conv` (its backward pass
  above all), and far faster than `lax.conv_general_dilated_patches`.
  """

  features: int
  kernel_size: int = 3
  dtype: Any = jnp.float32  # compute dtype; the parameters are float32

  @nn.compact
  def __call__(self, x):
    k, cin = self.kernel_size, x.shape[-1]
    if k % 2 != 1:
      raise ValueError(f"ShiftConv needs an odd kernel_size, got {k}")
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, cin, self.features))
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    x, kernel, bias = (a.astype(self.dtype) for a in (x, kernel, bias))
    r, h, w = k // 2, x.shape[1], x.shape[2]
    padded = jnp.pad(x, ((0, 0), (r, r), (r, r), (0, 0)))
    # Channel order (kh, kw, in) matches the kernel's row-major flattening.
    patches = jnp.concatenate(
      [padded[:, i : i + h, j : j + w, :] for i in range(k) for j in range(k)], axis=-1
    )
    return patches @ kernel.reshape(k * k * cin, self.features) + bias


def pool2x2(x, kind: str):
  """2x2 max or average pooling, stride 2, 'VALID' (as `nn.max_pool`/`nn.avg_pool` compute it).

  Written as a reshape and a reduction: on XLA:CPU the backward pass of `nn.max_pool`'s
  reduce_window (select-and-scatter) costs more than the rest of a small CNN's step.
  """
  n, h, w, c = x.shape
  x = x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c)
  return x.max(axis=(2, 4)) if kind == "max" else x.mean(axis=(2, 4))


class CNN(nn.Module):
  """`features` conv stages (3x3 conv, ReLU, 2x2 pool), then a ReLU dense layer and the logits.

  conv: "flax" (`nn.Conv`) or "shift" (`ShiftConv`, the same function, faster on CPU).
  pool: "max" or "avg" (see `pool2x2`).
  The input of the logits layer is sown as `intermediates/features` (read it with
  `apply(..., mutable=["intermediates"])`): dljax.tasks.fid's feature space.
  dtype: compute dtype (e.g. bfloat16); parameters stay float32.
  """

  num_classes: int
  features: Sequence[int] = (32, 64)
  dense: int = 256
  dropout: float = 0.0
  conv: str = "flax"
  pool: str = "max"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.conv not in CONVS:
      raise unknown_name("conv", self.conv, CONVS)
    if self.pool not in POOLS:
      raise unknown_name("pool", self.pool, POOLS)
    for width in self.features:
      if self.conv == "flax":
        conv = nn.Conv(width, (3, 3), dtype=self.dtype)
      else:
        conv = ShiftConv(width, dtype=self.dtype)
      x = conv(x)
      # ReLU commutes with max pooling: applied after it, on a quarter of the values (a faster
      # step on CPU, docs/benchmarks.md); average pooling needs it before.
      x = nn.relu(pool2x2(x, "max")) if self.pool == "max" else pool2x2(nn.relu(x), self.pool)
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(Dense(self.dense, dtype=self.dtype)(x))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    if not self.is_initializing():  # init would store it as a model collection of the state
      self.sow("intermediates", "features", x)
    return Dense(self.num_classes, dtype=self.dtype)(x)
