"""Model registry: every dljax model is a Flax Linen module built by name from a config."""

from dljax.errors import unknown_name
from dljax.models.cnn import CNN
from dljax.models.mlp import MLP
from dljax.models.resnet import ResNet18, ResNet20

MODELS = {
    "mlp": MLP,
    "cnn": CNN,
    "resnet20": ResNet20,
    "resnet18": ResNet18,
}


def build_model(name: str, **kwargs):
  """Instantiates the model registered as `name` with `kwargs` (its config fields)."""
  if name not in MODELS:
    raise unknown_name("model", name, MODELS)
  return MODELS[name](**kwargs)
