"""What diffusion (dljax.tasks.diffusion) and flow matching (dljax.tasks.flow_matching) share:
image generators that learn one network f(x_t, t) on noisy images and sample by integrating it.

A `Method` says what is particular to each: its per-image training loss given f and clean images
x [N, H, W, C] in [-1, 1], and its sampler, which turns noise into images with a given number of
steps. Everything else is here: the state (the trained U-Net and an exponential moving average of
its parameters, `DenoiserState`), one train step on the shared step factory
(`Update("net", loss)` then `Polyak("ema", "net", ema_decay)`), class-conditional training with
label dropout and classifier-free guidance (Ho & Salimans, 2022) at sampling,

  f_w(x, t, y) = f(x, t, y) + w (f(x, t, y) - f(x, t, none)),

and the evaluation: every time the EMA network's loss on test images and a grid of samples from
fixed noise; at the end `fid_mnist_cnn` and the class shares of `num_fid_samples` samples
(dljax/tasks/fid.py), the sampling time per 1,000 images, the method's own final metrics (DDPM's
ELBO) and WORKDIR/trajectory.npy, the states x_t of a few samples along the sampler's path.
"""

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np

from dljax.data import load_image_dataset
from dljax.data.device_feed import DeviceDataset
from dljax.errors import DljaxError
from dljax.experiment import Experiment, Hooks
from dljax.models import build_model, model_spec
from dljax.optim import make_optimizer
from dljax.parallel import split_batch, unsplit
from dljax.steps import Polyak, Update, make_train_step
from dljax.tasks import SampleOptions
from dljax.tasks.fid import make_sample_scorer
from dljax.tasks.gan import write_samples
from dljax.train_state import TrainState, init_model_state

TRAJECTORY_SAMPLES = 8  # samples whose path the final evaluation saves for the figures


@flax.struct.dataclass
class DenoiserState:
  """The trained network and the moving average of its parameters that sampling uses."""

  net: TrainState
  ema: Any  # parameters only: Polyak-averaged in every step, never trained by a gradient


@dataclasses.dataclass(frozen=True)
class Method:
  """A denoising generator: how it trains f and how it samples with it.

  loss: (f, x, rng) -> per-image losses [N], for clean images x in [-1, 1] and f(x_t, t) -> output
    with times t in [0, 1] (one per image [N], or a scalar for the whole batch).
  sample: (f, noise, rng, steps, sampler, trajectory) -> (images in [-1, 1], the states after
    each step [steps, N, ...] if `trajectory` else None).
  samplers: the sampler names `sample` takes.
  final_metrics: optional (network, params, test images in [-1, 1], rng) -> dict, added to the
    final evaluation; network(params) is the unconditional f (`unconditional_fn`).
  """

  loss: Callable
  sample: Callable
  samplers: tuple[str, ...]
  final_metrics: Callable | None = None


def network_fn(model, params, labels=None, guidance: float = 0.0):
  """f(x, t) -> the U-Net's output for times t (a scalar or [N]); with labels, conditional on
  them, and with `guidance` w > 0 the classifier-free guided combination (one doubled batch)."""
  null = model.num_classes  # the "no label" class

  def f(x, t):
    t = jnp.broadcast_to(jnp.asarray(t, x.dtype), (x.shape[0],))
    variables = {"params": params}
    if labels is None or not guidance:
      return model.apply(variables, x, t, labels)
    both = model.apply(
      variables,
      jnp.concatenate([x, x]),
      jnp.concatenate([t, t]),
      jnp.concatenate([labels, jnp.full_like(labels, null)]),
    )
    cond, uncond = jnp.split(both, 2)
    return cond + guidance * (cond - uncond)

  return f


def unconditional_fn(model, params):
  """f(x, t) without labels: the model itself, or the unconditional model a class-conditional one
  learns with label dropout."""

  def f(x, t):
    labels = jnp.full((x.shape[0],), model.num_classes) if model.num_classes else None
    return network_fn(model, params, labels)(x, t)

  return f


def sample_labels(num: int, num_classes: int):
  """Balanced labels 0, 1, ..., 9, 0, 1... for class-conditional samples; None if unconditional."""
  return jnp.arange(num) % num_classes if num_classes else None


def generate(
  method: Method, model, params, rng, num, steps, sampler, guidance=0.0, trajectory=False
):
  """`num` images [num, H, W, C] in [0, 1] from `params` with `steps` sampler steps, and with
  `trajectory` the states after each step [steps, num, H, W, C] (else None); jit it with
  everything but `params` and `rng` static. Under a mesh each device draws its share of the
  images (params replicated over the mesh would otherwise have every device draw every image),
  and all of them come back on every device."""
  labels = sample_labels(num, model.num_classes)
  noise_rng, sample_rng = jax.random.split(rng)
  noise = split_batch(jax.random.normal(noise_rng, (num, *model.image_shape)))
  f = network_fn(model, params, labels, guidance)
  images, path = method.sample(f, noise, sample_rng, steps, sampler, trajectory)
  to_unit = lambda y: (jnp.clip(y, -1.0, 1.0) + 1.0) / 2.0
  return unsplit(to_unit(images)), (unsplit(to_unit(path)) if trajectory else None)


def check_sampler(method: Method, sampler: str, steps: int, where: str):
  if sampler not in method.samplers:
    raise DljaxError(
      f"{where}: unknown sampler {sampler!r}; this model samples with {', '.join(method.samplers)}"
    )
  if steps < 1:
    raise DljaxError(f"{where}: sampler steps must be at least 1, got {steps}")


def sample_from_checkpoint(method: Method, state_tree, meta, options: SampleOptions) -> np.ndarray:
  """The diffusion and flow-matching tasks' sampling hook (dljax.tasks): `options.num_images`
  images from a restored checkpoint tree, the EMA parameters with the run's sampler, steps and
  guidance unless `options.steps` / `options.sampler` say otherwise."""
  steps = meta["sample_steps"] if options.steps is None else options.steps
  sampler = meta["sample_with"] if options.sampler is None else options.sampler
  num, rng = options.num_images, jax.random.PRNGKey(options.seed)
  check_sampler(method, sampler, steps, "experiments.generate")
  if "sample_batch" not in meta:
    raise DljaxError(
      "this checkpoint was written before runs recorded their sample_batch_size (2026-12-07); "
      "retrain it, or sample with the dljax version that wrote it"
    )
  model = build_model(meta["model"])
  batch = min(num, meta["sample_batch"])
  draw = jax.jit(
    lambda params, key: generate(
      method, model, params, key, batch, steps, sampler, meta["guidance"]
    )
  )
  return draw_in_batches(draw, state_tree["ema"], rng, num, batch)


def draw_in_batches(draw, params, rng, num: int, batch: int) -> np.ndarray:
  """`num` images from `draw(params, key) -> (images [batch, ...], _)`, batch `i` from
  `fold_in(rng, i)`: the U-Net's activations on 10,000 images at once would take gigabytes."""
  chunks = [
    np.asarray(draw(params, jax.random.fold_in(rng, i))[0]) for i in range(-(-num // batch))
  ]
  return np.concatenate(chunks)[:num]


def _conditional_labels(rng, labels, num_classes: int, dropout: float):
  """Training labels with a fraction `dropout` replaced by "none", so one network learns both the
  conditional and the unconditional model that guidance combines."""
  return jnp.where(jax.random.bernoulli(rng, dropout, labels.shape), num_classes, labels)


def build_denoising_experiment(config, mesh, method: Method, task: str, meta=None) -> Experiment:
  """The experiment of `method` registered as `task`; `meta`: what its `sample` hook needs
  beyond the model and the sampler (e.g. the number of diffusion timesteps)."""
  check_sampler(method, config.sampler, config.sample_steps, "--config.sampler")
  if config.num_fid_samples % config.sample_batch_size:
    raise DljaxError(
      f"num_fid_samples={config.num_fid_samples} is not a multiple of sample_batch_size="
      f"{config.sample_batch_size}; change one of them"
    )
  data = load_image_dataset(config.dataset, config.data_dir or None, config.tfds_download)
  num_classes = data.num_classes if config.conditional else 0
  spec = model_spec(config.model, image_shape=data.image_shape, num_classes=num_classes)
  model = build_model(spec)
  arrays = {"image": data.train_images * 2.0 - 1.0}
  if num_classes:
    arrays["label"] = data.train_labels
  train_data = DeviceDataset(arrays, config.batch_size, config.seed, mesh)
  num_steps = config.num_steps
  tx = make_optimizer(config.optimizer, num_steps)

  def loss(params, state, batch, rng, train):
    del train
    label_rng, loss_rng = jax.random.split(rng)
    labels = None
    if num_classes:
      labels = _conditional_labels(label_rng, batch["label"], num_classes, config.label_dropout)
    losses = method.loss(network_fn(model, params, labels), batch["image"], loss_rng)
    return jnp.mean(losses), ({}, None)

  def init_state():
    x = jnp.zeros((1, *data.image_shape))
    labels = jnp.zeros((1,), jnp.int32) if num_classes else None
    net = init_model_state(model, tx, jax.random.PRNGKey(config.seed), x, jnp.zeros((1,)), labels)
    return DenoiserState(net=net, ema=net.params)

  train_step = make_train_step(
    [Update("net", loss), Polyak("ema", "net", config.ema_decay)],
    train_data.batch,
    steps_per_call=config.steps_per_call,
  )

  test_images = jnp.asarray(data.test_images[: config.eval_images] * 2.0 - 1.0)
  eval_rng = jax.random.PRNGKey(config.seed + 1)  # the same noise and times at every evaluation
  test_labels = jnp.asarray(data.test_labels[: config.eval_images]) if num_classes else None

  @jax.jit
  def test_loss(ema):
    return jnp.mean(method.loss(network_fn(model, ema, test_labels), test_images, eval_rng))

  def draw(num, trajectory=False):
    """Jitted (params, rng) -> (images in [0, 1], their trajectory or None), the run's sampler:
    each device draws its share of the images, and every process gets all of them back."""
    return jax.jit(
      lambda params, rng: generate(
        method,
        model,
        params,
        rng,
        num,
        config.sample_steps,
        config.sampler,
        config.guidance_scale,
        trajectory,
      )
    )

  grid_key = jax.random.PRNGKey(config.seed + 2)
  draw_grid = draw(config.num_grid_samples, trajectory=True)  # one program for both figures
  draw_chunk = draw(config.sample_batch_size)
  fid_scorer, fid_floor_extras = make_sample_scorer(config.fid_classifier_workdir, data)
  fid_key = jax.random.PRNGKey(config.seed + 3)
  final_key = jax.random.PRNGKey(config.seed + 4)

  def evaluate(state):
    metrics = {"test_loss": float(test_loss(state.ema))}
    if int(state.net.step) < num_steps:
      return metrics
    if fid_scorer is not None:
      sample = draw_chunk.lower(state.ema, fid_key).compile()  # compiled before the clock starts
      start = time.perf_counter()
      images = draw_in_batches(
        sample, state.ema, fid_key, config.num_fid_samples, config.sample_batch_size
      )
      seconds = time.perf_counter() - start
      metrics["sample_seconds_per_1000"] = 1000 * seconds / config.num_fid_samples
      metrics.update(fid_scorer(images))
    if method.final_metrics is not None:
      network = lambda params: unconditional_fn(model, params)
      metrics.update(method.final_metrics(network, state.ema, test_images, final_key))
    return metrics

  def after_eval(state, step, workdir):
    images, path = draw_grid(state.ema, grid_key)
    write_samples(np.asarray(images), step, num_steps, workdir)
    if step == num_steps:
      path = path[:, :TRAJECTORY_SAMPLES]
      np.save(
        os.path.join(workdir, "trajectory.npy"), np.round(np.asarray(path) * 255).astype(np.uint8)
      )

  return Experiment(
    init_state=init_state,
    train_step=train_step,
    feed=train_data.feed,
    evaluate=evaluate,
    num_steps=num_steps,
    identity={"dataset": config.dataset, "model": spec},
    meta={
      "model": spec,
      "sample_with": config.sampler,
      "sample_steps": config.sample_steps,
      "guidance": config.guidance_scale,
      "sample_batch": config.sample_batch_size,
      **(meta or {}),
    },
    hooks=Hooks(after_eval=after_eval, final_extras=fid_floor_extras),
    mesh=mesh,
  )
