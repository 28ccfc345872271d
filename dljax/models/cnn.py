"""Small convolutional classifier (conv-relu-pool stages, then a dense head) for any image size."""

from typing import Sequence

import flax.linen as nn


class CNN(nn.Module):
  num_classes: int
  features: Sequence[int] = (32, 64)
  dense: int = 256
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool = False):
    for width in self.features:
      x = nn.relu(nn.Conv(width, (3, 3))(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(nn.Dense(self.dense)(x))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(self.num_classes)(x)
