"""The basics chapter: smoke configs end to end, autodiff against finite differences, regression
recovering the weights that generated its data."""

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from conftest import load_config

from dljax import parallel
from dljax.tasks import basics_compare, train
from dljax.tasks.basics import gradient_descent
from dljax.tasks.basics_gradcheck import max_relative_error


@pytest.mark.parametrize(
  "name", ["basics_logistic", "basics_moons", "basics_gradcheck", "basics_compare"]
)
def test_smoke_variant_runs_end_to_end(name, tmp_path):
  config = load_config(name, "smoke")
  summary = train(config, str(tmp_path))
  assert summary["steps"] == config.num_steps
  assert all(np.isfinite(v) for v in summary["final"].values())
  with open(tmp_path / "summary.json") as f:
    assert json.load(f)["final"] == summary["final"]
  if config.get("problem") == "moons":
    eval_steps = [
      *range(config.eval_every_steps, config.num_steps, config.eval_every_steps),
      config.num_steps,
    ]
    assert sorted(os.listdir(tmp_path / "boundary")) == [f"step_{s:06d}.png" for s in eval_steps]
  if config.task == "basics_compare":
    assert set(summary["final"]) == {
      f"{v}_test_{m}" for v in config.variants for m in ("accuracy", "loss")
    }
    assert os.path.getsize(tmp_path / "comparison.png") > 0
  elif config.get("grad_check"):
    assert summary["final"]["grad_max_rel_error"] < 1e-5


def tanh_with_derivative_scaled_by(factor: float):
  """tanh whose derivative autodiff takes to be `factor` * (1 - tanh^2): wrong unless factor=1."""

  @jax.custom_jvp
  def tanh(z):
    return jnp.tanh(z)

  tanh.defjvp(
    lambda primals, tangents: (
      jnp.tanh(primals[0]),
      factor * (1 - jnp.tanh(primals[0]) ** 2) * tangents[0],
    )
  )
  return tanh


@pytest.mark.parametrize("factor", [1.0, 1.1])
def test_finite_differences_confirm_a_right_gradient_and_catch_a_wrong_one(factor):
  tanh = tanh_with_derivative_scaled_by(factor)
  x = jax.random.normal(jax.random.PRNGKey(0), (16, 3))

  def loss(params):  # a one-hidden-layer regression
    return jnp.mean((tanh(x @ params["w1"]) @ params["w2"] - 1.0) ** 2)

  params = {"w1": jax.random.normal(jax.random.PRNGKey(1), (3, 4)), "w2": jnp.ones(4)}
  error = max_relative_error(loss, params)
  if factor == 1.0:
    assert error < 1e-6
  else:  # w2's gradient does not involve the derivative; w1's is 1.1 times too large
    assert error == pytest.approx(0.1 / 1.1, rel=1e-3)


def test_hand_written_gradient_descent_is_optax_sgd():
  params = {"w": jnp.arange(3.0), "b": jnp.ones(())}
  grads = {"w": jnp.array([0.5, -1.0, 2.0]), "b": jnp.array(3.0)}
  ours, sgd = gradient_descent(0.1), optax.sgd(0.1)
  ours_update, _ = ours.update(grads, ours.init(params), params)
  sgd_update, _ = sgd.update(grads, sgd.init(params), params)
  jax.tree.map(np.testing.assert_array_equal, ours_update, sgd_update)


@pytest.mark.parametrize("variant", ["smoke", "jax_grad_smoke"])
def test_linear_regression_recovers_the_true_weights(variant, tmp_path):
  config = load_config("basics_linear", variant, num_steps=300, checkpoint_every_steps=0)
  final = train(config, str(tmp_path))["final"]
  # Noise 0.1 on 1,000 examples: least squares itself lands ~0.002 from the true weights.
  assert final["least_squares_weight_error"] < 0.005
  assert final["weight_error"] < final["least_squares_weight_error"] + 0.005
  assert final["bias_error"] < 0.01
  assert final["test_mse"] < 0.011  # the noise floor is 0.01 (+-0.0005 on 1,000 test points)


def test_compared_variants_train_as_if_alone_on_the_same_batches():
  """Two identical variants stay identical, and equal the variant trained on its own."""
  sgd = {
    "optimizer": "sgd",
    "learning_rate": 0.1,
    "momentum": 0.9,
    "weight_decay": 0.0,
    "activation": "tanh",
    "kernel_init": "glorot_uniform",
  }
  adam = {**sgd, "optimizer": "adam", "learning_rate": 1e-3}
  params = {}
  for variants in ({"a": sgd, "b": sgd, "c": adam}, {"a": sgd}):
    config = load_config("basics_compare", "smoke")
    config.variants = ml_collections.ConfigDict(variants)
    mesh = parallel.make_data_mesh(1)
    with jax.set_mesh(mesh):
      experiment = basics_compare.build_experiment(config, mesh)
      state = jax.jit(experiment.init_state)()
      for step in range(5):
        state, metrics = experiment.train_step(state, experiment.feed(step))
    params[len(variants)] = {name: getattr(state, name).params for name in variants}
  assert set(metrics) == {f"a_{m}" for m in ("loss", "grad_norm", "accuracy")}
  jax.tree.map(np.testing.assert_array_equal, params[3]["a"], params[3]["b"])
  jax.tree.map(
    lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6),
    params[3]["a"],
    params[1]["a"],
  )
  assert not np.allclose(params[3]["a"]["Dense_0"]["kernel"], params[3]["c"]["Dense_0"]["kernel"])
