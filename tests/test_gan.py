"""DCGAN: each update trains only its network and keeps every BatchNorm change, runs resume
bitwise, a NaN in the second network's loss stops the run, and bad image shapes are refused."""

import dataclasses
import functools
import json
import signal

import jax
import jax.numpy as jnp
import numpy as np
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
from dljax.errors import DljaxError, NonFiniteLossError
from dljax.steps import Update, make_train_step
from dljax.tasks.gan import disc_loss, gen_loss, make_gan_train_step


@pytest.fixture(scope="module")
def smoke():
  """The smoke experiment (tiny nets on mnist5k) and a batch of images in [-1, 1]."""
  from dljax.tasks import build_experiment

  config = load_config("mnist_dcgan", "smoke")
  mesh = parallel.make_data_mesh(0)
  with jax.set_mesh(mesh):
    exp = build_experiment(config, mesh)
  batch = {"image": jax.random.uniform(jax.random.PRNGKey(3), (16, 28, 28, 1), minval=-1.0)}
  return exp, jax.jit(exp.init_state), batch


def test_each_update_leaves_the_other_networks_parameters_untouched(smoke):
  _, init, batch = smoke
  for trained, other in (("disc", "gen"), ("gen", "disc")):
    loss = {"disc": disc_loss, "gen": gen_loss}[trained]
    after, metrics = make_train_step([Update(trained, loss)])(init(), batch)
    before = init()  # the step donated the first one
    for field in ("params", "opt_state", "step"):
      assert_trees_equal(
        getattr(getattr(after, other), field), getattr(getattr(before, other), field)
      )
    assert int(getattr(after, trained).step) == 1
    changed = jax.tree.leaves(getattr(after, trained).params)
    assert not all(
      np.array_equal(a, b)
      for a, b in zip(changed, jax.tree.leaves(getattr(before, trained).params))
    )
    # The other network ran in training mode: its BatchNorm statistics moved anyway.
    assert not np.allclose(
      jax.tree.leaves(getattr(after, other).mutable)[0],
      jax.tree.leaves(getattr(before, other).mutable)[0],
    )
    assert f"{trained}_loss" in metrics


def test_gan_step_keeps_both_updates_batch_norm_statistics(smoke):
  """D's statistics after the step are those of D's own update, then of G's update running D."""
  _, init, batch = smoke
  after, _ = make_gan_train_step()(init(), batch)
  s = init()

  @functools.partial(jax.jit, static_argnums=(1, 2))  # op by op, each op would compile alone
  def by_hand(s, network, loss):
    net = getattr(s, network)
    grads, (_, mutable) = jax.grad(loss, has_aux=True)(
      net.params, s, batch, jax.random.fold_in(net.rng, net.step), True
    )
    s = s.replace(**{network: net.apply_gradients(grads)})
    return s.replace(**{k: getattr(s, k).replace(mutable=v) for k, v in mutable.items()})

  after_disc = by_hand(s, "disc", disc_loss)
  want = by_hand(after_disc, "gen", gen_loss)
  for x, y in zip(jax.tree.leaves(after), jax.tree.leaves(want)):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
  stats = jax.tree.leaves(after.disc.mutable)
  assert not any(np.allclose(a, b) for a, b in zip(stats, jax.tree.leaves(after_disc.disc.mutable)))


def test_nan_in_the_generator_loss_stops_the_run_naming_it(smoke, tmp_path):
  from dljax import loop
  from dljax.tasks import loop_options

  exp, _, _ = smoke
  step = exp.train_step

  @jax.jit
  def poisoned(state, feed):  # G's loss turns NaN at step 7, D's stays finite
    state, metrics = step(state, feed)
    metrics["gen_loss"] = jnp.where(state.gen.step == 8, jnp.nan, metrics["gen_loss"])
    return state, metrics

  config = load_config("mnist_dcgan", "smoke")
  with (
    jax.set_mesh(exp.mesh),
    pytest.raises(NonFiniteLossError, match="gen_loss became NaN or inf at step 7"),
  ):
    poisoned_exp = dataclasses.replace(exp, train_step=dataclasses.replace(step, fn=poisoned))
    loop.run(poisoned_exp, loop_options(config), str(tmp_path))


def test_image_shapes_the_model_cannot_take_are_refused():
  from dljax.models.dcgan import Generator, check_image_shape

  for shape in [(30, 30, 1), (28, 32, 1), (28, 28, 2), (28, 28)]:
    with pytest.raises(DljaxError, match="needs square images"):
      check_image_shape(shape, 2)
  check_image_shape((32, 32, 3), 3)
  with pytest.raises(DljaxError, match="multiple of 4"):
    Generator(image_shape=(30, 30, 1)).init(jax.random.PRNGKey(0), jnp.zeros((1, 64)))
  result = run_module(
    "experiments.train",
    f"--config={config_path('mnist_dcgan')}:smoke",
    "--workdir=/nonexistent/unused",
    "--config.gen.model.features=(8, 4, 2)",
    "--config.gen.model.stages=0",  # all three double the side
  )
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].startswith("error: a DCGAN with 3 stages needs")


def test_stride_one_convolutions_keep_the_side_in_both_networks():
  from dljax.models.dcgan import Discriminator, Generator

  key, z, images = jax.random.PRNGKey(0), jnp.zeros((3, 8)), jnp.zeros((3, 28, 28, 1))
  gen = Generator(image_shape=(28, 28, 1), latent_dim=8, features=(16, 8, 4), stages=2)
  gen_vars = gen.init(key, z)
  assert gen.apply(gen_vars, z).shape == (3, 28, 28, 1)
  assert gen_vars["params"]["Dense_0"]["kernel"].shape == (8, 7 * 7 * 16)  # two doublings to 28
  disc = Discriminator(image_shape=(28, 28, 1), features=(4, 8, 16), stages=2)
  disc_vars = disc.init(key, images)
  assert disc.apply(disc_vars, images).shape == (3,)
  assert disc_vars["params"]["Dense_0"]["kernel"].shape == (7 * 7 * 16, 1)  # the last kept 7x7
  with pytest.raises(DljaxError, match="stages=4 is invalid: it must be between 1 and the 3"):
    Generator(image_shape=(28, 28, 1), features=(16, 8, 4), stages=4).init(key, z)


def test_batch_statistics_sampling_depends_on_the_batch_and_running_averages_do_not(smoke):
  from dljax.models import build_model
  from dljax.tasks.gan import generate

  exp, init, _ = smoke
  gen_model, variables = build_model(exp.meta["model"]), init().gen.variables()
  z = jax.random.normal(jax.random.PRNGKey(1), (8, gen_model.latent_dim))
  running = generate(gen_model, variables, z, batch_stats=False)
  np.testing.assert_allclose(generate(gen_model, variables, z[:4], False), running[:4], atol=1e-6)
  batch = generate(gen_model, variables, z, batch_stats=True)
  assert not np.allclose(generate(gen_model, variables, z[:4], True), batch[:4], atol=1e-3)
  assert not np.allclose(batch, running, atol=1e-3)


def train(workdir, *args):
  return run_module(
    "experiments.train",
    f"--config={config_path('mnist_dcgan')}:smoke",
    f"--workdir={workdir}",
    "--config.quiet=True",
    *args,
  )


def read_records(workdir) -> list[dict]:
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


LONG = ("--config.num_steps=30", "--config.checkpoint_every_steps=5")


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("reference")
  result = train(workdir, *LONG)
  assert result.returncode == 0, result.stderr
  return workdir


def test_smoke_run_writes_samples_grids_and_gif_and_generates(reference_run):
  from dljax.checkpoint import Checkpointer
  from dljax.tasks import SampleOptions
  from dljax.tasks.gan import sample

  summary = json.loads((reference_run / "summary.json").read_text())
  assert summary["steps"] == 30 and set(summary["final"]) == {"real_score", "fake_score"}
  records = read_records(reference_run)
  train_keys = set().union(*(r for r in records if r["split"] == "train"))
  assert {"disc_loss", "gen_loss", "disc_real_score", "gen_fake_score"} <= train_keys
  assert sorted(p.name for p in (reference_run / "samples").glob("*.png")) == [
    f"step_{s:07d}.png" for s in (10, 20, 30)
  ]
  from PIL import Image

  with Image.open(reference_run / "samples.gif") as gif:
    assert gif.n_frames == 3
  checkpointer = Checkpointer(str(reference_run / "checkpoints"), {})
  meta = checkpointer.read_meta(30)
  images = sample(checkpointer.restore_raw(30), meta, SampleOptions(num=5))
  assert images.shape == (5, 28, 28, 1) and 0 <= images.min() and images.max() <= 1
  assert images.std() > 0


def test_sigkill_then_rerun_ends_bitwise_identical(reference_run, tmp_path):
  killed = tmp_path / "killed"
  proc = start_module(
    "experiments.train",
    f"--config={config_path('mnist_dcgan')}:smoke",
    f"--workdir={killed}",
    "--config.quiet=True",
    *LONG,
  )
  signal_after_checkpoint(proc, killed, 10, signal.SIGKILL)
  proc.wait()
  resumed = train(killed, *LONG)
  assert resumed.returncode == 0, resumed.stderr
  ref, res = (json.loads((d / "summary.json").read_text()) for d in (reference_run, killed))
  assert res["resumed_from_step"] >= 10 and res["steps"] == 30
  assert res["final"] == ref["final"]
  # Both optimizers' states, both networks' BatchNorm statistics and keys, bit for bit.
  assert_trees_equal(saved_state(reference_run, 30), saved_state(killed, 30))
  assert [r for r in read_records(killed) if r["split"] == "train"] == [
    r for r in read_records(reference_run) if r["split"] == "train"
  ]
