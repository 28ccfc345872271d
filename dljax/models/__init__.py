"""Model registry: every dljax model is a Flax Linen module built by name from a config."""

import functools
import inspect

from dljax.errors import unknown_name
from dljax.models.cnn import CNN
from dljax.models.dcgan import Discriminator, Generator
from dljax.models.gpt import GPT
from dljax.models.mlp import MLP
from dljax.models.resnet import ResNet18, ResNet20
from dljax.models.rl import ActorCritic, QNetwork
from dljax.models.rnn_lm import RNNLM
from dljax.models.vae import MLPVAE, ConvVAE

MODELS = {
  "mlp": MLP,
  "cnn": CNN,
  "resnet20": ResNet20,
  "resnet18": ResNet18,
  "gpt": GPT,
  "lstm": functools.partial(RNNLM, cell_type="lstm"),
  "gru": functools.partial(RNNLM, cell_type="gru"),
  "rl_actor_critic": ActorCritic,
  "rl_q_network": QNetwork,
  "dcgan_generator": Generator,
  "dcgan_discriminator": Discriminator,
  "vae_mlp": MLPVAE,
  "vae_conv": ConvVAE,
}


def build_model(name: str, **kwargs):
  """Instantiates the model registered as `name` with `kwargs` (its config fields)."""
  if name not in MODELS:
    raise unknown_name("model", name, MODELS)
  return MODELS[name](**kwargs)


def accepts(name: str, field: str) -> bool:
  """Whether the model registered as `name` has a constructor field `field`."""
  if name not in MODELS:
    raise unknown_name("model", name, MODELS)
  return field in inspect.signature(MODELS[name]).parameters


def build_from_spec(spec: dict):
  """The model a checkpoint's JSON spec describes: its registry `name` plus constructor arguments
  (JSON lists become the tuples the config had)."""
  spec = dict(spec)
  return build_model(
    spec.pop("name"), **{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}
  )
