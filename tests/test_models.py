"""Vision models: parameter counts against the published architectures, shapes for every input."""

import jax
import jax.numpy as jnp
import pytest

from dljax.errors import DljaxError
from dljax.models import build_model
from dljax.train_state import count_params


def n_params(name, shape, **kwargs):
  model = build_model(name, num_classes=10, **kwargs)
  variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(shape)))
  return count_params(variables["params"])


def test_resnet_parameter_counts_match_published_architectures():
  assert n_params("resnet20", (1, 32, 32, 3)) == 272_474  # He et al. 2016: 0.27 M
  assert n_params("resnet18", (1, 32, 32, 3)) == 11_173_962  # CIFAR ResNet-18: 11.17 M


def test_mlp_and_cnn_parameter_counts_follow_their_layers():
  assert n_params("mlp", (1, 28, 28, 1), hidden=(512, 512)) == (784 * 512 + 512) + (512 * 512 + 512) + (512 * 10 + 10)
  conv = (3 * 3 * 1 * 32 + 32) + (3 * 3 * 32 * 64 + 64)
  assert n_params("cnn", (1, 28, 28, 1), features=(32, 64), dense=256) == conv + (7 * 7 * 64 * 256 + 256) + (256 * 10 + 10)


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet20"])
@pytest.mark.parametrize("shape", [(3, 8, 8, 1), (3, 28, 28, 1), (3, 32, 32, 3)])
def test_models_are_generic_over_input_shape(name, shape):
  model = build_model(name, num_classes=10)
  variables = model.init(jax.random.PRNGKey(0), jnp.zeros(shape))
  logits = model.apply(variables, jnp.ones(shape), train=False)
  assert logits.shape == (3, 10)


def test_unknown_model_lists_known_ones():
  with pytest.raises(DljaxError, match="unknown model 'vgg'.*cnn.*resnet20"):
    build_model("vgg", num_classes=10)
