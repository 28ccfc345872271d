"""Diffusion and flow matching: the EMA entry of the step factory, losses and samplers against the
exact denoiser of one-image data, the discretized decoder, the U-Net, smoke runs that resume
bitwise after SIGKILL, and sampling from a run directory with --steps and --sampler."""

import json
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import (
  assert_trees_equal,
  config_path,
  load_config,
  run_module,
  saved_state,
  signal_after_checkpoint,
  start_module,
)

from dljax import parallel
from dljax.errors import DljaxError
from dljax.models.unet import UNet
from dljax.steps import Polyak, Update, make_train_step
from dljax.tasks import diffusion, flow_matching
from dljax.tasks.denoising import DenoiserState
from dljax.train_state import TrainState

X_STAR = jax.random.uniform(jax.random.PRNGKey(7), (1, 4, 4, 1), minval=-1.0, maxval=1.0)


def test_polyak_follows_the_update_in_the_same_step():
  def loss(params, state, batch, rng, train):
    return jnp.sum((params["w"] - batch) ** 2), ({}, None)

  net = TrainState.create(
    apply_fn=None, params={"w": jnp.ones(3)}, tx=optax.sgd(0.1), rng=jax.random.PRNGKey(0)
  )
  state = DenoiserState(net=net, ema={"w": jnp.zeros(3)})
  step = make_train_step([Update("net", loss), Polyak("ema", "net", 0.9)], jit=False)
  after, metrics = step(state, jnp.zeros(3))
  np.testing.assert_allclose(after.net.params["w"], 0.8)  # 1 - 0.1 * 2 * 1
  np.testing.assert_allclose(after.ema["w"], 0.9 * 0.0 + 0.1 * 0.8)  # of the updated params
  assert "net_loss" in metrics and not any(k.startswith("ema") for k in metrics)
  with pytest.raises(ValueError, match="must start with an Update"):
    make_train_step([Polyak("ema", "net", 0.9), Update("net", loss)])


def exact_epsilon(alpha_bars):
  """The optimal noise prediction when the data is the one image X_STAR."""
  abar = jnp.asarray(alpha_bars, jnp.float32)
  num_timesteps = len(alpha_bars) - 1

  def f(x, t):
    t = jnp.broadcast_to(t, (x.shape[0],))  # samplers pass one time for the batch
    a = abar[jnp.round(t * num_timesteps).astype(jnp.int32)][:, None, None, None]
    return (x - jnp.sqrt(a) * X_STAR) / jnp.sqrt(1.0 - a)

  return f


def exact_velocity(x, t):
  """The optimal rectified-flow velocity when the data is the one image X_STAR."""
  return (X_STAR - x) / (1.0 - jnp.broadcast_to(t, (x.shape[0],)))[:, None, None, None]


def test_ddpm_loss_vanishes_and_every_sampler_returns_the_data_for_the_exact_denoiser():
  alpha_bars = diffusion.cosine_alpha_bars(100)
  assert alpha_bars[0] == 1 and np.all(np.diff(alpha_bars) < 0) and alpha_bars[-1] < 1e-4
  f = exact_epsilon(alpha_bars)
  x = jnp.repeat(X_STAR, 5, axis=0)
  assert float(jnp.max(diffusion.ddpm_loss(f, x, jax.random.PRNGKey(0), alpha_bars))) < 1e-5
  noise = jax.random.normal(jax.random.PRNGKey(1), x.shape)
  for sampler in diffusion.SAMPLERS:
    for steps in (1, 7, 100):
      out, path = diffusion.ddpm_sample(
        f, noise, jax.random.PRNGKey(2), steps, sampler, True, alpha_bars
      )
      np.testing.assert_allclose(out, x, atol=1e-3)  # float32: x0 is divided by sqrt(abar_T)
      assert path.shape == (steps, *x.shape)
  # DDPM draws fresh noise at each step, DDIM none: their paths differ.
  paths = [
    diffusion.ddpm_sample(f, noise, jax.random.PRNGKey(2), 7, s, True, alpha_bars)[1]
    for s in ("ddpm", "ddim")
  ]
  assert not np.allclose(paths[0][2], paths[1][2], atol=1e-3)


def test_flow_loss_vanishes_and_euler_reaches_the_data_heun_is_second_order():
  x = jnp.repeat(X_STAR, 5, axis=0)
  loss = flow_matching.flow_matching_loss(exact_velocity, x, jax.random.PRNGKey(0))
  assert float(jnp.max(loss)) < 1e-8
  noise = jax.random.normal(jax.random.PRNGKey(1), x.shape)
  out, _ = flow_matching.flow_sample(exact_velocity, noise, None, 5, "euler", False)
  np.testing.assert_allclose(out, x, atol=1e-5)
  # dx/dt = t from 0: x(1) = 1/2. Euler's rectangles miss it; Heun's trapezoids are exact.
  zero = jnp.zeros((1, 1, 1, 1))
  linear = lambda x, t: jnp.broadcast_to(t, x.shape)
  euler, _ = flow_matching.flow_sample(linear, zero, None, 4, "euler", False)
  heun, _ = flow_matching.flow_sample(linear, zero, None, 4, "heun", False)
  assert float(euler[0, 0, 0, 0]) == pytest.approx(3 / 8)
  assert float(heun[0, 0, 0, 0]) == pytest.approx(1 / 2)


def test_discretized_decoder_is_a_distribution_over_the_256_levels():
  levels = jnp.arange(256) / 127.5 - 1.0
  for mean, log_scale in ((0.3, -4.0), (-0.999, -2.0), (1.2, -6.0)):
    log_p = diffusion.discretized_gaussian_log_likelihood(levels, mean, log_scale)
    assert float(jnp.sum(jnp.exp(log_p))) == pytest.approx(1.0, abs=1e-4)


def test_elbo_terms_are_the_textbook_kl_of_the_reverse_steps():
  """An error c in every predicted noise but the decoder's adds, for each t >= 2,
  KL(N(mu_tilde, beta_tilde) || N(mu_theta, beta_tilde)) = beta_t^2 / (2 beta_tilde_t alpha_t
  (1 - abar_t)) * D c^2; with one stratified time per t the estimate is exact."""
  num_timesteps, c = 50, 0.1
  alpha_bars = diffusion.cosine_alpha_bars(num_timesteps)
  exact = exact_epsilon(alpha_bars)
  off = lambda x, t: (
    exact(x, t)
    + c * (jnp.broadcast_to(t, (x.shape[0],)) > 1.5 / num_timesteps)[:, None, None, None]
  )
  x = jnp.repeat(X_STAR, 3, axis=0)
  rng = jax.random.PRNGKey(3)
  extra = diffusion.neg_elbo(off, x, rng, alpha_bars, num_timesteps - 1) - diffusion.neg_elbo(
    exact, x, rng, alpha_bars, num_timesteps - 1
  )
  abar = np.asarray(alpha_bars, np.float64)
  t = np.arange(2, num_timesteps + 1)
  beta = 1 - abar[t] / abar[t - 1]
  beta_tilde = beta * (1 - abar[t - 1]) / (1 - abar[t])
  kl = beta**2 / (2 * beta_tilde * (1 - beta) * (1 - abar[t])) * X_STAR.size * c**2
  np.testing.assert_allclose(extra, kl.sum(), rtol=1e-3)


def test_unet_keeps_the_image_shape_and_needs_labels_when_conditional():
  x, t = jnp.ones((2, 28, 28, 1)), jnp.array([0.1, 0.9])
  model = UNet(image_shape=(28, 28, 1), features=(8, 8, 16))
  # Shapes only (jax.eval_shape): nothing to compile or run.
  variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), x, t)
  assert jax.eval_shape(model.apply, variables, x, t).shape == x.shape
  conditional = UNet(image_shape=(28, 28, 1), features=(8, 8, 16), num_classes=10)
  variables = jax.eval_shape(conditional.init, jax.random.PRNGKey(0), x, t, jnp.array([3, 10]))
  assert variables["params"]["Embed_0"]["embedding"].shape == (11, 32)  # 10 classes + "none"
  with pytest.raises(ValueError, match="needs labels"):
    jax.eval_shape(conditional.apply, variables, x, t)


def test_sampling_under_a_mesh_splits_the_images_over_the_devices_and_draws_the_same_ones():
  from dljax.tasks.denoising import generate

  model = UNet(image_shape=(8, 8, 1), features=(8, 8))
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1)), jnp.zeros((1,)))["params"]
  mesh = parallel.make_data_mesh(2)
  params = parallel.replicate(params, mesh)
  method = diffusion.make_method(50)
  run = lambda p, k: generate(method, model, p, k, 6, 3, "ddim", 0.0, False)
  key = jax.random.PRNGKey(1)
  with jax.set_mesh(mesh):
    split = jax.jit(run).lower(params, key).compile()
  whole = jax.jit(run).lower(params, key).compile()
  # Under the mesh, each device's U-Net works on 3 of the 6 images; without it, each on all 6.
  assert "f32[3,8,8," in split.as_text() and "f32[3,8,8," not in whole.as_text()
  images = split(params, key)[0]
  assert images.sharding.is_fully_replicated  # every device (and process) has all of them
  np.testing.assert_allclose(images, whole(params, key)[0], atol=1e-6)


def test_conditional_ddpm_smoke_run_reports_the_elbo_and_writes_its_figures(tmp_path):
  from dljax import loop
  from dljax.tasks import build_experiment, loop_options

  config = load_config("mnist_ddpm", "smoke", conditional=True, guidance_scale=2.0)
  mesh = parallel.make_data_mesh(0)
  with jax.set_mesh(mesh):
    summary = loop.run(build_experiment(config, mesh), loop_options(config), str(tmp_path))
  final = summary["final"]
  assert set(final) == {"test_loss", "neg_elbo_nats", "bits_per_dim"}
  assert np.isfinite(final["neg_elbo_nats"]) and final["neg_elbo_nats"] > 0
  assert final["bits_per_dim"] == pytest.approx(final["neg_elbo_nats"] / 64 / np.log(2))
  assert sorted(p.name for p in (tmp_path / "samples").glob("*.png")) == [
    f"step_{s:07d}.png" for s in (10, 20)
  ]
  path = np.load(tmp_path / "trajectory.npy")
  assert path.shape == (config.sample_steps, 8, 8, 8, 1) and path.dtype == np.uint8


FLOW = ("--config.checkpoint_every_steps=5", "--config.quiet=True")  # 20 steps


def train_flow(workdir, *args):
  return run_module(
    "experiments.train",
    f"--config={config_path('mnist_flow')}:smoke",
    f"--workdir={workdir}",
    *args,
  )


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("flow")
  result = train_flow(workdir, *FLOW)
  assert result.returncode == 0, result.stderr
  return workdir


def test_flow_sigkill_then_rerun_ends_bitwise_identical(flow_run, tmp_path):
  killed = tmp_path / "killed"
  proc = start_module(
    "experiments.train", f"--config={config_path('mnist_flow')}:smoke", f"--workdir={killed}", *FLOW
  )
  signal_after_checkpoint(proc, killed, 10, signal.SIGKILL)
  proc.wait()
  resumed = train_flow(killed, *FLOW)
  assert resumed.returncode == 0, resumed.stderr
  ref, res = (json.loads((d / "summary.json").read_text()) for d in (flow_run, killed))
  assert res["resumed_from_step"] >= 10 and res["final"] == ref["final"]
  # The network, its optimizer, its key and the EMA copy, bit for bit.
  assert_trees_equal(saved_state(flow_run, 20), saved_state(killed, 20))


def test_generate_samples_a_flow_run_with_other_steps_and_sampler(flow_run, tmp_path):
  out = tmp_path / "heun.png"
  args = ["experiments.generate", f"--workdir={flow_run}", "--num=6", "--npy", f"--out={out}"]
  result = run_module(*args, "--steps=3", "--sampler=heun")
  assert result.returncode == 0, result.stderr
  heun = np.load(tmp_path / "heun.npy")
  assert heun.shape == (6, 8, 8, 1) and 0 <= heun.min() and heun.max() <= 1 and heun.std() > 0
  result = run_module(*args, "--steps=3", "--sampler=euler")
  assert result.returncode == 0, result.stderr
  assert not np.allclose(np.load(tmp_path / "heun.npy"), heun)
  result = run_module(*args, "--sampler=ddim")
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1] == (
    "error: experiments.generate: unknown sampler 'ddim'; this model samples with euler, heun"
  )


def test_many_images_are_drawn_in_batches_each_from_its_own_noise(flow_run):
  from dljax.checkpoint import Checkpointer
  from dljax.tasks import SampleOptions

  checkpointer = Checkpointer(str(flow_run / "checkpoints"), {})
  step = checkpointer.latest_step()
  meta, tree = checkpointer.read_meta(step), checkpointer.restore_raw(step)
  meta["sample_batch"] = 4  # the run's sample_batch_size
  images = flow_matching.sample(tree, meta, SampleOptions(num=10, steps=2))
  assert images.shape == (10, 8, 8, 1)
  # Three batches of four (the last cut to two), none a copy of another.
  assert not np.allclose(images[:2], images[4:6]) and not np.allclose(images[4:6], images[8:])
  one_batch = flow_matching.sample(tree, meta, SampleOptions(num=3, steps=2))
  assert one_batch.shape == (3, 8, 8, 1)
  del meta["sample_batch"]  # a checkpoint of an older dljax
  with pytest.raises(DljaxError, match="before runs recorded their sample_batch_size"):
    flow_matching.sample(tree, meta, SampleOptions(num=3, steps=2))


def test_samplers_benchmark_refuses_a_count_that_is_not_whole_batches(tmp_path):
  from benchmarks.samplers import score_samplers

  (tmp_path / "summary.json").write_text(json.dumps({"config": {"sample_batch_size": 500}}))
  for num in (500, 1200):
    with pytest.raises(DljaxError, match=f"sample_batch_size 500 of at least 1000.*got {num}"):
      score_samplers(str(tmp_path), "unused", ("euler:10",), num)
