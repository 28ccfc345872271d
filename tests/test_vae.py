"""The VAE: its objectives (KL, importance-weighted bound), data, CLI runs, sampling, bad input."""

import json
import os
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import tensorflow_datasets as tfds
from conftest import config_path, load_config, run_module

from dljax.data import load_image_dataset
from dljax.errors import DljaxError
from dljax.models import build_model
from dljax.tasks import train
from dljax.tasks.vae import (
  bernoulli_log_likelihood,
  gaussian_kl,
  iw_log_likelihood,
  make_vae_loss,
)

SMOKE = config_path("mnist_vae") + ":smoke"


def test_kl_matches_a_monte_carlo_estimate():
  mean = jnp.array([[0.5, -1.0, 0.0], [2.0, 0.3, -0.7]])
  logvar = jnp.array([[0.0, -1.0, 0.8], [-2.0, 0.5, 0.1]])
  z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(
    jax.random.PRNGKey(0), (200_000, *mean.shape)
  )
  log_q = jax.scipy.stats.norm.logpdf(z, mean, jnp.exp(0.5 * logvar)).sum(-1)
  log_p = jax.scipy.stats.norm.logpdf(z).sum(-1)
  np.testing.assert_allclose(gaussian_kl(mean, logvar), (log_q - log_p).mean(0), rtol=0.02)


def test_bernoulli_log_likelihood_matches_its_definition():
  logits = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 4, 1)) * 3
  x = jax.random.bernoulli(jax.random.PRNGKey(1), 0.3, logits.shape).astype(jnp.float32)
  p = jax.nn.sigmoid(logits)
  expected = (x * jnp.log(p) + (1 - x) * jnp.log(1 - p)).sum((1, 2, 3))
  np.testing.assert_allclose(bernoulli_log_likelihood(logits, x), expected, rtol=1e-5)


def test_importance_weighted_bound_is_above_the_elbo_and_tightens_with_k():
  model = build_model({"name": "vae_mlp", "latent_dim": 4, "hidden": 32}, image_shape=(8, 8, 1))
  x = (np.random.default_rng(0).random((64, 8, 8, 1)) < 0.3).astype(np.float32)
  params = jax.jit(model.init)(jax.random.PRNGKey(1), x[:1], jax.random.PRNGKey(2))["params"]

  @jax.jit
  def elbo(keys):  # closed-form KL, reconstruction averaged over a draw of z per key
    logits, mean, logvar = jax.vmap(lambda k: model.apply({"params": params}, x, k))(keys)
    return (bernoulli_log_likelihood(logits, x).mean(0) - gaussian_kl(mean[0], logvar[0])).mean()

  expected_elbo = float(elbo(jax.random.split(jax.random.PRNGKey(3), 256)))
  bound = jax.jit(iw_log_likelihood, static_argnums=(0, 4))
  bounds = [
    float(bound(model.apply, params, x, jax.random.PRNGKey(4), k).mean())
    for k in (1, 10, 100, 1000)
  ]
  # k = 1 estimates the ELBO itself: averaged over 64 keys, its standard error is ~0.1 nat.
  one_sample = [
    float(bound(model.apply, params, x, jax.random.PRNGKey(5 + i), 1).mean()) for i in range(64)
  ]
  assert np.mean(one_sample) == pytest.approx(expected_elbo, abs=0.4)
  assert expected_elbo < bounds[1] < bounds[2] < bounds[3]
  assert bounds[3] - expected_elbo > 1.0  # a real gap, not noise


def test_beta_weighs_the_kl_and_pulls_codes_to_the_prior():
  model = build_model({"name": "vae_mlp", "latent_dim": 4, "hidden": 32}, image_shape=(8, 8, 1))
  x = np.random.default_rng(0).random((64, 8, 8, 1)).astype(np.float32)
  params = jax.jit(model.init)(jax.random.PRNGKey(1), x[:1], jax.random.PRNGKey(2))["params"]
  state = types.SimpleNamespace(apply_fn=model.apply)
  batch, rng = {"image": x}, jax.random.PRNGKey(3)
  elbo_loss, (metrics, _) = make_vae_loss()(params, state, batch, rng, True)
  beta_loss, (beta_metrics, _) = make_vae_loss(4.0)(params, state, batch, rng, True)
  assert float(elbo_loss) == pytest.approx(float(metrics["recon"] + metrics["kl"]), rel=1e-6)
  assert float(beta_loss - elbo_loss) == pytest.approx(3.0 * float(metrics["kl"]), rel=1e-5)
  for term in ("recon", "kl"):  # the same terms, weighed differently
    assert float(beta_metrics[term]) == pytest.approx(float(metrics[term]))

  def trained_kl(beta):  # 50 Adam steps on the batch, then the KL of its codes
    loss = make_vae_loss(beta)
    tx = optax.adam(3e-3)

    @jax.jit
    def step(carry, key):
      p, opt = carry
      grads = jax.grad(lambda q: loss(q, state, batch, key, True)[0])(p)
      updates, opt = tx.update(grads, opt, p)
      return (optax.apply_updates(p, updates), opt), None

    keys = jax.random.split(jax.random.PRNGKey(4), 50)
    (p, _), _ = jax.lax.scan(step, (params, tx.init(params)), keys)
    return float(loss(p, state, batch, rng, False)[1][0]["kl"])

  kl_elbo, kl_beta = trained_kl(1.0), trained_kl(8.0)
  assert kl_beta < 0.5 * kl_elbo


def test_smoke_config_end_to_end_and_generate_images(tmp_path):
  out = run_module(
    "experiments.train", f"--config={SMOKE}", f"--workdir={tmp_path}", "--config.quiet=True"
  )
  assert out.returncode == 0, out.stderr
  final = json.loads((tmp_path / "summary.json").read_text())["final"]
  assert set(final) == {"neg_elbo", "recon", "kl", "nll_iw"}
  assert final["neg_elbo"] == pytest.approx(final["recon"] + final["kl"], rel=1e-4)
  assert 0 < final["nll_iw"] <= final["neg_elbo"]
  figures = set(os.listdir(tmp_path / "figures"))  # latent_dim 2: every figure, at both evals
  for kind in ("samples", "reconstructions", "interpolation", "manifold", "latent_scatter"):
    assert {f"{kind}_step000010.png", f"{kind}_step000020.png"} <= figures

  out = run_module(
    "experiments.generate",
    f"--workdir={tmp_path}",
    "--num=12",
    "--npy",
    f"--out={tmp_path / 'grid.png'}",
  )
  assert out.returncode == 0, out.stderr
  images = np.load(tmp_path / "grid.npy")
  assert images.shape == (12, 8, 8, 1) and 0 <= images.min() and images.max() <= 1
  assert images.std(0).mean() > 0.01  # different latents give different images
  assert os.path.getsize(tmp_path / "grid.png") > 0

  before = sorted(os.listdir(tmp_path))
  out = run_module("experiments.generate", f"--workdir={tmp_path}", "--num=0")
  assert out.returncode == 2 and "Traceback" not in out.stderr
  error = "error: --num must be at least 1 (images to sample), got 0"
  assert out.stderr.strip().splitlines() == [error]
  assert sorted(os.listdir(tmp_path)) == before


def test_latent_dim_below_one_is_a_one_line_error_and_workdir_is_kept(tmp_path):
  (tmp_path / "notes.txt").write_text("keep me")
  out = run_module(
    "experiments.train", f"--config={SMOKE}", f"--workdir={tmp_path}", "--config.model.latent_dim=0"
  )
  assert out.returncode == 2 and "Traceback" not in out.stderr
  assert out.stderr.strip().splitlines()[-1].startswith("error: latent_dim=0")
  assert "--config.model.latent_dim" in out.stderr
  assert os.listdir(tmp_path) == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
  "overrides,message",
  [
    ({"dataset": "cifar10"}, r"shape \[H, W, 1\].*\[32, 32, 3\]"),
    ({"beta": -1.0}, r"beta=-1.0: the KL weight .* >= 0"),
    (
      {"model.name": "vae_conv", "model.features": (4, 4, 4, 4)},
      "multiples of 16, got shape \\(8, 8, 1\\)",
    ),
  ],
)
def test_image_shape_the_model_cannot_take_is_named(tmp_path, overrides, message):
  with tfds.testing.mock_data(num_examples=8), pytest.raises(DljaxError, match=message):
    train(load_config("mnist_vae", "smoke", **overrides), str(tmp_path))
  assert not os.listdir(tmp_path)


def test_binarized_mnist_loads_through_tfds_and_trains(tmp_path):
  with tfds.testing.mock_data(num_examples=40):
    data = load_image_dataset("binarized_mnist")
    summary = train(
      load_config("mnist_vae", "smoke", dataset="binarized_mnist", num_steps=4, iw_batch_size=20),
      str(tmp_path),
    )
  assert data.train_images.shape == (40, 28, 28, 1) and data.test_images.shape == (40, 28, 28, 1)
  assert set(np.unique(data.train_images)) <= {0.0, 1.0} and data.train_labels is None
  assert summary["final"]["nll_iw"] <= summary["final"]["neg_elbo"]
  assert "latent_scatter_step000004.png" not in os.listdir(tmp_path / "figures")  # no labels
