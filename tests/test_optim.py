"""Optimizer construction: schedules, weight-decay masking, clipping, names."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dljax.config import base_config
from dljax.errors import DljaxError
from dljax.optim import make_optimizer, make_schedule, matrices_only


def opt_config(**kw):
  c = base_config().optimizer
  c.update(kw)
  return c


def test_warmup_then_cosine_to_floor():
  lr = make_schedule(
    opt_config(
      learning_rate=1e-3, warmup_steps=100, decay_steps=2000, end_learning_rate_factor=0.1
    ),
    total_steps=5000,
  )
  assert float(lr(0)) == 0.0
  np.testing.assert_allclose(float(lr(50)), 5e-4, rtol=1e-6)
  np.testing.assert_allclose(float(lr(100)), 1e-3, rtol=1e-6)
  np.testing.assert_allclose(float(lr(2000)), 1e-4, rtol=1e-5)
  np.testing.assert_allclose(float(lr(4000)), 1e-4, rtol=1e-5)  # stays at the floor


def test_linear_and_constant_schedules():
  lin = make_schedule(opt_config(schedule="linear", learning_rate=1.0), total_steps=10)
  np.testing.assert_allclose([float(lin(s)) for s in (0, 5, 10)], [1.0, 0.5, 0.0], atol=1e-6)
  const = make_schedule(opt_config(schedule="constant", learning_rate=0.3), total_steps=10)
  assert float(const(7)) == pytest.approx(0.3)


def test_weight_decay_masks_matrices_only():
  params = {
    "dense": {"kernel": jnp.ones((3, 4)), "bias": jnp.ones(4)},
    "ln": {"scale": jnp.ones(4)},
  }
  assert matrices_only(params) == {"dense": {"kernel": True, "bias": False}, "ln": {"scale": False}}
  tx = make_optimizer(
    opt_config(name="adamw", learning_rate=0.0, weight_decay=0.5, schedule="constant"), 10
  )
  grads = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  # lr 0 -> no update at all; with lr > 0 only the kernel would decay.
  assert all(float(jnp.abs(u).max()) == 0 for u in jax.tree.leaves(updates))
  tx = make_optimizer(
    opt_config(name="sgd", learning_rate=1.0, weight_decay=0.5, momentum=0.0, schedule="constant"),
    10,
  )
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_allclose(updates["dense"]["kernel"], -0.5)
  np.testing.assert_allclose(updates["dense"]["bias"], 0.0)
  np.testing.assert_allclose(updates["ln"]["scale"], 0.0)


def test_gradient_clipping_bounds_the_update():
  tx = make_optimizer(
    opt_config(
      name="sgd", learning_rate=1.0, momentum=0.0, grad_clip_norm=1.0, schedule="constant"
    ),
    10,
  )
  params = {"w": jnp.zeros(4)}
  updates, _ = tx.update({"w": jnp.full(4, 10.0)}, tx.init(params), params)
  np.testing.assert_allclose(optax.tree.norm(updates), 1.0, rtol=1e-6)


def test_bad_optimizer_settings_are_named():
  with pytest.raises(DljaxError, match="unknown optimizer 'lion'"):
    make_optimizer(opt_config(name="lion"), 10)
  with pytest.raises(DljaxError, match="unknown learning-rate schedule"):
    make_optimizer(opt_config(schedule="step"), 10)
  with pytest.raises(DljaxError, match="warmup_steps=20"):
    make_optimizer(opt_config(warmup_steps=20), 10)
