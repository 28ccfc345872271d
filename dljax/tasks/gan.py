"""Generative adversarial networks (DCGAN): two networks with their own optimizers, updated in turn.

Each train step draws one batch of latent noise z from G's key and step and makes two updates with
it (dljax.steps.Update):
the discriminator D learns to tell real images from the generator's, with the binary cross-entropy

  L_D = -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))),

then the generator G, on the D that update left, learns the non-saturating loss of Goodfellow et
al. (2014), L_G = -log sigmoid(D(G(z))), whose gradient stays strong while D still wins. Both
networks run in training mode in both updates (BatchNorm on batch statistics), so each update
returns the BatchNorm statistics of every network it ran: D's change during G's update too.

Images are scaled to [-1, 1] (the generator's tanh range) and kept on the device. G samples with
its BatchNorm layers normalising either by their running averages or, as in training, by the
statistics of the batch being sampled (`sample_batch_stats`). Each evaluation reports D's mean
score on the test images and on generated ones and, when a classifier run is configured,
`fid_mnist_cnn` of as many samples as there are test images and the smallest and largest class
share among them (dljax/tasks/fid.py), and the FID of the same noise sampled in the other BatchNorm
mode; it writes a grid of samples from one fixed noise batch to WORKDIR/samples/, and the last one
an animated GIF of all of them.
Checkpoints carry the generator's spec, so `experiments.generate` samples from a run directory.
"""

import os

import flax
import jax
import jax.numpy as jnp
import numpy as np

from dljax.data import load_image_dataset
from dljax.data.device_feed import DeviceDataset
from dljax.experiment import Experiment, Hooks
from dljax.models import build_model, model_spec
from dljax.models.dcgan import check_image_shape, conv_strides
from dljax.optim import make_optimizer
from dljax.parallel import split_batch, unsplit
from dljax.steps import Update, make_train_step
from dljax.tasks import SampleOptions
from dljax.tasks.fid import make_sample_scorer
from dljax.tasks.image_grid import save_gif, save_grid
from dljax.train_state import TrainState, init_model_state


@flax.struct.dataclass
class GANState:
  """The generator and the discriminator, each with its own optimizer, step and key."""

  gen: TrainState
  disc: TrainState
  latent_dim: int = flax.struct.field(pytree_node=False)  # the size of G's input noise


def _train_mode(net: TrainState, variables: dict, x):
  """`net` on `x` in training mode: its output and its updated BatchNorm statistics."""
  return net.apply_fn(variables, x, train=True, mutable=list(net.mutable))


def _noise(state: GANState, batch) -> jax.Array:
  """The step's latent batch, from G's step key: D's update and G's draw the same z, so XLA
  computes G(z) once for both (PyTorch's DCGAN example reuses its fake batch the same way)."""
  return jax.random.normal(state.gen.step_rng(), (batch["image"].shape[0], state.latent_dim))


def disc_loss(params, state: GANState, batch, rng, train):
  """D's cross-entropy on a real batch and a generated one (two BatchNorm batches, as in DCGAN)."""
  del rng, train  # z is the step's (_noise); the losses only train, evaluation has its figures
  fake, gen_stats = _train_mode(state.gen, state.gen.variables(), _noise(state, batch))
  real_logits, disc_stats = _train_mode(state.disc, state.disc.variables(params), batch["image"])
  fake_logits, disc_stats = _train_mode(state.disc, {"params": params, **disc_stats}, fake)
  loss = jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
  metrics = {
    "real_score": jnp.mean(jax.nn.sigmoid(real_logits)),
    "fake_score": jnp.mean(jax.nn.sigmoid(fake_logits)),
  }
  return loss, (metrics, {"gen": gen_stats, "disc": disc_stats})


def gen_loss(params, state: GANState, batch, rng, train):
  """The non-saturating generator loss -log sigmoid(D(G(z))) through the current D."""
  del rng, train
  fake, gen_stats = _train_mode(state.gen, state.gen.variables(params), _noise(state, batch))
  logits, disc_stats = _train_mode(state.disc, state.disc.variables(), fake)
  loss = jnp.mean(jax.nn.softplus(-logits))
  return loss, (
    {"fake_score": jnp.mean(jax.nn.sigmoid(logits))},
    {"gen": gen_stats, "disc": disc_stats},
  )


def make_gan_train_step(batch_fn=None, **kwargs):
  """One step: D's update, then G's on the D it left (kwargs: make_train_step's)."""
  return make_train_step([Update("disc", disc_loss), Update("gen", gen_loss)], batch_fn, **kwargs)


def generate(gen_model, variables, z, batch_stats: bool) -> jax.Array:
  """Images [N, H, W, C] in [0, 1] from latents z. BatchNorm normalises by the statistics of this
  batch of z (`batch_stats`, as in training; nothing is updated) or by its running averages."""
  if batch_stats:
    images, _ = gen_model.apply(variables, z, train=True, mutable=["batch_stats"])
  else:
    images = gen_model.apply(variables, z, train=False)
  return (images + 1.0) / 2.0


def sample(state_tree: dict, meta: dict, options: SampleOptions) -> np.ndarray:
  """The task's sampling hook (dljax.tasks): `options.num_images` images [num, H, W, C] in [0, 1]
  from z ~ N(0, I), given a restored checkpoint tree and its meta, in the run's BatchNorm
  sampling mode."""
  gen_model = build_model(meta["model"])
  gen = state_tree["gen"]
  z = jax.random.normal(
    jax.random.PRNGKey(options.seed), (options.num_images, gen_model.latent_dim)
  )
  variables = {"params": gen["params"], **gen["mutable"]}
  return np.asarray(generate(gen_model, variables, z, meta.get("batch_stats", False)))


def write_samples(images, step: int, num_steps: int, workdir: str):
  """The grid of this evaluation's fixed-noise samples; after the last, a GIF of every grid so far
  (read back from the run directory, so a resumed run's GIF still starts at step 0)."""
  directory = os.path.join(workdir, "samples")
  os.makedirs(directory, exist_ok=True)
  np.save(os.path.join(directory, f"step_{step:07d}.npy"), np.round(images * 255).astype(np.uint8))
  save_grid(images, os.path.join(directory, f"step_{step:07d}.png"))
  if step == num_steps:
    frames = sorted(f for f in os.listdir(directory) if f.endswith(".npy"))
    save_gif(
      [np.load(os.path.join(directory, f)) / 255.0 for f in frames],
      os.path.join(workdir, "samples.gif"),
    )


def build_experiment(config, mesh) -> Experiment:
  data = load_image_dataset(config.dataset, config.data_dir or None, config.tfds_download)
  for net in (config.gen, config.disc):
    strides = conv_strides(len(net.model.features), net.model.get("stages", 0))
    check_image_shape(data.image_shape, strides.count(2))
  gen_spec = model_spec(config.gen.model, image_shape=data.image_shape)  # saved in checkpoints
  disc_spec = model_spec(config.disc.model, image_shape=data.image_shape)
  gen_model, disc_model = build_model(gen_spec), build_model(disc_spec)
  train_data = DeviceDataset(
    {"image": data.train_images * 2.0 - 1.0}, config.batch_size, config.seed, mesh
  )
  num_steps = config.num_steps
  gen_tx = make_optimizer(config.gen.optimizer, num_steps, "gen.optimizer")
  disc_tx = make_optimizer(config.disc.optimizer, num_steps, "disc.optimizer")

  def init_state():
    gen_key, disc_key = jax.random.split(jax.random.PRNGKey(config.seed))
    z = jnp.zeros((1, config.gen.model.latent_dim))
    image = jnp.zeros((1, *data.image_shape))
    return GANState(
      gen=init_model_state(gen_model, gen_tx, gen_key, z),
      disc=init_model_state(disc_model, disc_tx, disc_key, image),
      latent_dim=config.gen.model.latent_dim,
    )

  fid_scorer, fid_floor_extras = make_sample_scorer(config.fid_classifier_workdir, data)
  noise_key = jax.random.PRNGKey(config.seed + 1)  # the same samples at every evaluation
  grid_z = jax.random.normal(noise_key, (config.num_grid_samples, config.gen.model.latent_dim))
  eval_z = jax.random.normal(
    jax.random.fold_in(noise_key, 1), (len(data.test_images), config.gen.model.latent_dim)
  )
  test_images = jnp.asarray(data.test_images * 2.0 - 1.0)

  batch_stats = config.sample_batch_stats
  other_mode = "running_averages" if batch_stats else "batch_statistics"

  @jax.jit
  def eval_scores(state: GANState, z, real):
    """Samples from z in both BatchNorm modes (the configured one first), and D's mean score in
    inference mode on `real` and on the first ones, on every device. Each device generates its
    share of z (the state is replicated: unconstrained, every device would generate all of them).
    """
    z = split_batch(z)
    samples = generate(gen_model, state.gen.variables(), z, batch_stats)
    other = generate(gen_model, state.gen.variables(), z, not batch_stats)
    score = lambda x: jnp.mean(jax.nn.sigmoid(disc_model.apply(state.disc.variables(), x)))
    scores = {"real_score": score(real), "fake_score": score(samples * 2.0 - 1.0)}
    return jax.tree.map(unsplit, (samples, other, scores))

  sample_grid = jax.jit(lambda variables: generate(gen_model, variables, grid_z, batch_stats))

  def evaluate(state):
    samples, other, scores = eval_scores(state, eval_z, test_images)
    metrics = {k: float(v) for k, v in scores.items()}
    if fid_scorer is not None:
      metrics.update(fid_scorer(np.asarray(samples)))
      metrics[f"fid_mnist_cnn_{other_mode}"] = fid_scorer(np.asarray(other))["fid_mnist_cnn"]
    return metrics

  def after_eval(state, step, workdir):
    write_samples(np.asarray(sample_grid(state.gen.variables())), step, num_steps, workdir)

  return Experiment(
    init_state=init_state,
    train_step=make_gan_train_step(train_data.batch, steps_per_call=config.steps_per_call),
    feed=train_data.feed,
    evaluate=evaluate,
    num_steps=num_steps,
    identity={"dataset": config.dataset, "gen": gen_spec, "disc": disc_spec},
    meta={"model": gen_spec, "batch_stats": batch_stats},
    hooks=Hooks(after_eval=after_eval, final_extras=fid_floor_extras),
    mesh=mesh,
  )
