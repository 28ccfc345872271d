"""Multi-layer perceptron classifier: flattens any image shape and maps it to class logits."""

from typing import Sequence

import flax.linen as nn


class MLP(nn.Module):
  num_classes: int
  hidden: Sequence[int] = (512, 512)
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(self.num_classes)(x)
