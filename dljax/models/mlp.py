"""Multi-layer perceptron: flattens any input shape and maps it to `num_classes` outputs.

With no hidden layers it is the linear model `x @ W + b` (linear and logistic regression).
The activation and the kernel initialiser are named, so that the basics chapter can compare them.
"""

from collections.abc import Sequence

import flax.linen as nn

from dljax.errors import unknown_name
from dljax.models.dense import Dense

ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "gelu": nn.gelu, "sigmoid": nn.sigmoid}
KERNEL_INITS = {
  "lecun_normal": nn.initializers.lecun_normal(),  # variance 1/fan_in (Flax's default)
  "he_normal": nn.initializers.he_normal(),  # variance 2/fan_in: keeps ReLU activations' scale
  "glorot_uniform": nn.initializers.glorot_uniform(),  # variance 2/(fan_in+fan_out)
  "unit_normal": nn.initializers.normal(1.0),  # N(0, 1): activations grow as sqrt(fan_in)
}


class MLP(nn.Module):
  num_classes: int
  hidden: Sequence[int] = (512, 512)
  dropout: float = 0.0
  activation: str = "relu"
  kernel_init: str = "lecun_normal"

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.activation not in ACTIVATIONS:
      raise unknown_name("activation", self.activation, ACTIVATIONS)
    if self.kernel_init not in KERNEL_INITS:
      raise unknown_name("kernel initialiser", self.kernel_init, KERNEL_INITS)
    kernel_init = KERNEL_INITS[self.kernel_init]
    x = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      x = ACTIVATIONS[self.activation](Dense(width, kernel_init=kernel_init)(x))
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return Dense(self.num_classes, kernel_init=kernel_init)(x)
