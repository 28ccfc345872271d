"""Vision models: parameter counts against the published architectures, shapes for every input,
the CPU-friendly layers (Dense, CNN) against Flax's."""

import functools
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from dljax.errors import DljaxError
from dljax.models import build_model, model_spec
from dljax.models.cnn import ShiftConv, pool2x2
from dljax.models.dcgan import ConvTranspose2x
from dljax.models.dense import Dense
from dljax.models.resnet import _stored
from dljax.train_state import count_params


def n_params(name, shape, **kwargs):
  model = build_model({"name": name, **kwargs}, num_classes=10)
  variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(shape)))
  return count_params(variables["params"])


def test_resnet_parameter_counts_match_published_architectures():
  assert n_params("resnet20", (1, 32, 32, 3)) == 272_474  # He et al. 2016: 0.27 M
  assert n_params("resnet18", (1, 32, 32, 3)) == 11_173_962  # CIFAR ResNet-18: 11.17 M


def test_mlp_and_cnn_parameter_counts_follow_their_layers():
  assert n_params("mlp", (1, 28, 28, 1), hidden=(512, 512)) == (784 * 512 + 512) + (
    512 * 512 + 512
  ) + (512 * 10 + 10)
  conv = (3 * 3 * 1 * 32 + 32) + (3 * 3 * 32 * 64 + 64)
  assert n_params("cnn", (1, 28, 28, 1), features=(32, 64), dense=256) == conv + (
    7 * 7 * 64 * 256 + 256
  ) + (256 * 10 + 10)


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet20"])
@pytest.mark.parametrize("shape", [(3, 8, 8, 1), (3, 28, 28, 1), (3, 32, 32, 3)])
def test_models_are_generic_over_input_shape(name, shape):
  model = build_model({"name": name}, num_classes=10)
  # Shapes only (jax.eval_shape): nothing to compile or run.
  variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros(shape))
  logits = jax.eval_shape(functools.partial(model.apply, train=False), variables, jnp.ones(shape))
  assert logits.shape == (3, 10)


def test_resnet_stored_activation_is_the_identity_bit_for_bit():
  x = jnp.array([-0.0, 0.0, 1.5e-38, 3.4e38, -2.5, 7.0, 0.1], jnp.float32)
  cotangent = jnp.array([1e-30, -3.0, 0.25, 2.0, -0.0, 1e30, 0.3], jnp.float32)

  @jax.jit
  def value_and_gradient(x, cotangent):
    y, vjp = jax.vjp(_stored, x)
    return y, vjp(cotangent)[0]

  y, grad = value_and_gradient(x, cotangent)
  bits = lambda a: np.asarray(a).view(np.uint32)
  np.testing.assert_array_equal(bits(y), bits(x))
  np.testing.assert_array_equal(bits(grad), bits(cotangent))


def test_unknown_model_lists_known_ones():
  with pytest.raises(DljaxError, match="unknown model 'vgg'.*cnn.*resnet20"):
    build_model({"name": "vgg"}, num_classes=10)


def test_shift_conv_equals_flax_conv_forward_and_gradient():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 7, 3))
  flax_conv, shift_conv = nn.Conv(5, (3, 3)), ShiftConv(5)
  params = flax_conv.init(jax.random.PRNGKey(1), x)
  params = jax.tree.map(lambda p: p + 0.1, params)  # a nonzero bias, too
  assert jax.tree.map(jnp.shape, shift_conv.init(jax.random.PRNGKey(1), x)) == jax.tree.map(
    jnp.shape, params
  )
  np.testing.assert_allclose(
    shift_conv.apply(params, x), flax_conv.apply(params, x), rtol=1e-5, atol=1e-5
  )
  loss = lambda conv: lambda p, x: jnp.sum(jnp.sin(conv.apply(p, x)))
  grads = [jax.grad(loss(conv), argnums=(0, 1))(params, x) for conv in (shift_conv, flax_conv)]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), *grads)


@pytest.mark.parametrize("shape", [(6, 5), (2, 3, 5)], ids=["rows", "sequence"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dense_equals_flax_dense_forward_and_gradient(shape, dtype):
  x = jax.random.normal(jax.random.PRNGKey(0), shape)
  flax_dense, dense = nn.Dense(4, dtype=dtype), Dense(4, dtype=dtype)
  params = jax.tree.map(lambda p: p + 0.1, flax_dense.init(jax.random.PRNGKey(1), x))
  assert jax.tree.map(jnp.shape, dense.init(jax.random.PRNGKey(1), x)) == jax.tree.map(
    jnp.shape, params
  )
  np.testing.assert_array_equal(dense.apply(params, x), flax_dense.apply(params, x))
  loss = lambda layer: lambda p, x: jnp.sum(jnp.sin(layer.apply(p, x).astype(jnp.float32)))
  grads = [jax.grad(loss(layer), argnums=(0, 1))(params, x) for layer in (dense, flax_dense)]
  tol = 1e-5 if dtype == jnp.float32 else 2e-2
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=tol, atol=tol), *grads)
  assert jax.tree.map(lambda g: g.dtype, grads[0]) == jax.tree.map(lambda g: g.dtype, grads[1])


def test_conv_transpose_2x_equals_flax_conv_transpose_forward_and_gradient():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 6, 3))  # not square: rows and columns differ
  flax_conv, phase_conv = nn.ConvTranspose(4, (4, 4), strides=(2, 2)), ConvTranspose2x(4)
  params = flax_conv.init(jax.random.PRNGKey(1), x)
  params = jax.tree.map(lambda p: p + 0.1, params)  # a nonzero bias, too
  assert jax.tree.map(jnp.shape, phase_conv.init(jax.random.PRNGKey(1), x)) == jax.tree.map(
    jnp.shape, params
  )
  y = phase_conv.apply(params, x)
  assert y.shape == (2, 10, 12, 4)
  np.testing.assert_allclose(y, flax_conv.apply(params, x), rtol=1e-5, atol=1e-5)
  loss = lambda conv: lambda p, x: jnp.sum(jnp.sin(conv.apply(p, x)))
  grads = [jax.grad(loss(conv), argnums=(0, 1))(params, x) for conv in (phase_conv, flax_conv)]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), *grads)


@pytest.mark.parametrize("kind,flax_pool", [("max", nn.max_pool), ("avg", nn.avg_pool)])
def test_pool2x2_equals_flax_pooling_on_odd_sizes(kind, flax_pool):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 9, 3))
  np.testing.assert_allclose(pool2x2(x, kind), flax_pool(x, (2, 2), strides=(2, 2)), rtol=1e-6)
  pools = (lambda x: pool2x2(x, kind), lambda x: flax_pool(x, (2, 2), strides=(2, 2)))
  grads = [jax.grad(lambda x, pool=pool: jnp.sum(jnp.sin(pool(x))))(x) for pool in pools]
  np.testing.assert_allclose(*grads, rtol=1e-6)  # no ties: random normal inputs


@pytest.mark.parametrize("kind,flax_pool", [("max", nn.max_pool), ("avg", nn.avg_pool)])
def test_cnn_is_conv_relu_pool_stages_then_the_dense_head(kind, flax_pool):
  model = build_model({"name": "cnn", "features": (4, 6), "dense": 8, "pool": kind}, num_classes=10)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 9, 1))
  params = model.init(jax.random.PRNGKey(1), x)["params"]

  def reference(params, x):  # the textbook order: convolution, ReLU, pooling
    for i in range(2):
      conv = params[f"Conv_{i}"]
      x = lax.conv_general_dilated(
        x, conv["kernel"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
      )
      x = flax_pool(nn.relu(x + conv["bias"]), (2, 2), strides=(2, 2))
    x = nn.relu(x.reshape(len(x), -1) @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"])
    return x @ params["Dense_1"]["kernel"] + params["Dense_1"]["bias"]

  apply = lambda params, x: model.apply({"params": params}, x)
  np.testing.assert_allclose(apply(params, x), reference(params, x), rtol=1e-5, atol=1e-6)
  grads = [jax.grad(lambda p, f=f: jnp.sum(jnp.sin(f(p, x))))(params) for f in (apply, reference)]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), *grads)


@pytest.mark.parametrize("conv", ["flax", "shift"])
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_cnn_conv_and_pool_options_keep_the_parameter_count(conv, pool):
  kwargs = {"features": (32, 64), "dense": 256}
  assert n_params("cnn", (1, 28, 28, 1), conv=conv, pool=pool, **kwargs) == n_params(
    "cnn", (1, 28, 28, 1), **kwargs
  )


def test_unknown_cnn_option_lists_known_ones():
  model = build_model({"name": "cnn", "pool": "min"}, num_classes=10)
  with pytest.raises(DljaxError, match="unknown pool 'min'; known pools: avg, max"):
    model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1)))


def test_build_model_takes_the_derived_fields_a_model_declares():
  # An LSTM has no block_size: the task offers it and the registry leaves it out.
  spec = model_spec({"name": "lstm", "hidden_size": 8}, vocab_size=5, block_size=16)
  assert spec == {"name": "lstm", "hidden_size": 8, "vocab_size": 5}
  gpt = build_model({"name": "gpt", "n_layer": 1}, vocab_size=5, block_size=16)
  assert (gpt.config.vocab_size, gpt.config.block_size, gpt.config.n_layer) == (5, 16, 1)


def test_a_checkpoints_json_spec_rebuilds_the_same_model():
  model = build_model({"name": "cnn", "features": (8, 16), "dense": 32}, num_classes=10)
  spec = json.loads(
    json.dumps(model_spec({"name": "cnn", "features": (8, 16), "dense": 32}, num_classes=10))
  )
  assert spec["features"] == [8, 16]  # JSON has no tuples
  assert build_model(spec) == model


def test_build_model_refuses_unknown_and_clashing_fields():
  with pytest.raises(DljaxError, match="model 'mlp' has no field 'widht'.*hidden"):
    build_model({"name": "mlp", "widht": 3}, num_classes=10)
  with pytest.raises(DljaxError, match="'num_classes' is set by the data"):
    build_model({"name": "mlp", "num_classes": 3}, num_classes=10)
  with pytest.raises(DljaxError, match="no 'name'"):
    build_model({"hidden": (3,)}, num_classes=10)
