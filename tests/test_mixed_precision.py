"""Mixed precision (`--config.dtype=bfloat16`): bfloat16 compute, float32 parameters, one-line
errors for what cannot run. A bfloat16 GPT training run (loss falls, parameters and optimizer
state stay float32) is part of tests/test_benchmarks.py's GPU-check dry run."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import load_config

from dljax.errors import DljaxError
from dljax.models import build_model
from dljax.models.precision import check_dtype, dtype_kwargs
from dljax.tasks import train


@pytest.mark.parametrize(
  "name,kwargs,inputs",
  [
    (
      "gpt",
      {"vocab_size": 65, "block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16},
      jnp.arange(32, dtype=jnp.int32).reshape(2, 16) % 65,
    ),
    (
      "cnn",
      {"num_classes": 10, "features": (4,), "dense": 8, "conv": "shift"},
      jax.random.uniform(jax.random.key(1), (4, 8, 8, 1)),
    ),
    (
      "cnn",
      {"num_classes": 10, "features": (4,), "dense": 8, "conv": "flax"},
      jax.random.uniform(jax.random.key(1), (4, 8, 8, 1)),
    ),
    (
      "resnet20",
      {"num_classes": 10, "stage_sizes": (1,), "stage_features": (4,)},
      jax.random.uniform(jax.random.key(1), (2, 8, 8, 3)),
    ),
  ],
)
def test_bfloat16_model_computes_in_bfloat16_from_float32_params(name, kwargs, inputs):
  f32 = build_model({"name": name, **kwargs})
  bf16 = build_model({"name": name, **kwargs}, dtype="bfloat16")
  variables = jax.jit(f32.init)(jax.random.key(0), inputs)
  assert jax.tree.structure(variables) == jax.tree.structure(
    jax.eval_shape(bf16.init, jax.random.key(0), inputs)
  )
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(variables))
  # A ResNet in training mode also returns its updated BatchNorm statistics.
  train = {"train": True, "mutable": ["batch_stats"]} if "batch_stats" in variables else {}
  logits, reference = (
    jax.jit(lambda v, x, m=m: m.apply(v, x, **train))(variables, inputs) for m in (bf16, f32)
  )
  if train:
    (logits, stats), (reference, _) = logits, reference
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(stats))
  assert logits.dtype == jnp.bfloat16 and reference.dtype == jnp.float32
  # The same function, to bfloat16's ~3 significant digits (errors grow a little per layer).
  error = np.abs(np.asarray(logits, np.float32) - reference).max()
  assert error < 0.05 * np.abs(reference).max() + 1e-2


def test_unknown_dtype_is_refused_with_the_known_ones(tmp_path):
  with pytest.raises(DljaxError, match="unknown dtype 'float16'; known dtypes: bfloat16, float32"):
    train(load_config("mnist_cnn", "smoke", dtype="float16"), str(tmp_path))
  assert not list(tmp_path.iterdir())  # refused before anything was written


def test_bfloat16_for_a_float32_only_model_names_the_models_that_have_it():
  with pytest.raises(
    DljaxError,
    match=r"model 'mlp' computes only in float32; .*float32 or one "
    r"of the models with a dtype: cnn, resnet20, resnet18, gpt",
  ):
    dtype_kwargs("mlp", "bfloat16")
  assert dtype_kwargs("mlp", "float32") == {}


def test_bfloat16_on_a_gpu_without_it_is_refused():
  v100 = types.SimpleNamespace(platform="gpu", compute_capability="7.0", device_kind="Tesla V100")
  with pytest.raises(
    DljaxError, match="Tesla V100 .*has no bfloat16 arithmetic; use --config.dtype=float32"
  ):
    check_dtype("bfloat16", v100)
  check_dtype("float32", v100)
  check_dtype(
    "bfloat16",
    types.SimpleNamespace(
      platform="gpu", compute_capability="9.0", device_kind="NVIDIA H100 80GB HBM3"
    ),
  )
