"""Model registry: every dljax model is a Flax Linen module built by name from a config block.

`build_model(config.model, num_classes=10)` is the one way to build a model. The config's
`model` block (a ConfigDict, or a plain dict such as a checkpoint's JSON spec) names the model and
sets its constructor fields; the keyword arguments are the fields a task derives from its data
(num_classes, vocab_size, block_size, action_dim, image_shape, dtype...). A task offers every
such field it knows and each model takes those it declares: an LSTM has no block_size.
`model_spec` is the same thing as plain data, saved with checkpoints and rebuilt by
`build_model(spec)`. A new model is a module and a line in MODELS (docs/add_a_model.md).
"""

import functools
import inspect

from dljax.errors import DljaxError, unknown_name
from dljax.models.cnn import CNN
from dljax.models.dcgan import Discriminator, Generator
from dljax.models.gpt import build_gpt
from dljax.models.mixer import MlpMixer
from dljax.models.mlp import MLP
from dljax.models.resnet import ResNet18, ResNet20
from dljax.models.rl import ActorCritic, QNetwork
from dljax.models.rnn_lm import RNNLM
from dljax.models.unet import UNet
from dljax.models.vae import MLPVAE, ConvVAE

MODELS = {
  "mlp": MLP,
  "cnn": CNN,
  "resnet20": ResNet20,
  "resnet18": ResNet18,
  "gpt": build_gpt,
  "lstm": functools.partial(RNNLM, cell_type="lstm"),
  "gru": functools.partial(RNNLM, cell_type="gru"),
  "rl_actor_critic": ActorCritic,
  "rl_q_network": QNetwork,
  "dcgan_generator": Generator,
  "dcgan_discriminator": Discriminator,
  "vae_mlp": MLPVAE,
  "vae_conv": ConvVAE,
  "mlp_mixer": MlpMixer,
  "unet": UNet,
}


def model_fields(name: str) -> frozenset[str]:
  """The constructor fields of the model registered as `name`."""
  if name not in MODELS:
    raise unknown_name("model", name, MODELS)
  parameters = inspect.signature(MODELS[name]).parameters
  return frozenset(field for field in parameters if field not in ("parent", "name"))


def model_spec(model_config, **derived) -> dict:
  """The registry `name` and constructor fields `build_model(model_config, **derived)` uses.

  The config's fields come first, then each derived field the model declares. A field set both
  in the config and by the data is an error (the data decides it).
  """
  spec = dict(model_config.to_dict() if hasattr(model_config, "to_dict") else model_config)
  if "name" not in spec:
    raise DljaxError(
      f"the model config {spec} has no 'name'; set model.name to one of {', '.join(MODELS)}"
    )
  fields = model_fields(spec["name"])
  unknown = sorted(set(spec) - fields - {"name"})
  if unknown:
    raise DljaxError(
      f"model {spec['name']!r} has no field {', '.join(map(repr, unknown))}; remove it from the "
      f"config's model block (its fields: {', '.join(sorted(fields))})"
    )
  clash = sorted(set(spec) & set(derived))
  if clash:
    raise DljaxError(
      f"model field {', '.join(map(repr, clash))} is set by the data, not the config; remove "
      f"it from the config's model block"
    )
  spec.update({field: value for field, value in derived.items() if field in fields})
  return spec


def build_model(model_config, **derived):
  """The model a config block (or a checkpoint's spec) describes, given the derived fields.

  JSON lists become the tuples the config had.
  """
  spec = model_spec(model_config, **derived)
  name = spec.pop("name")
  return MODELS[name](**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
