"""Variational autoencoders on binarized digits: the generative chapter's likelihood model.

The model is trained on the negative evidence lower bound per image (nats),

  -ELBO(x) = E_q(z|x)[-log p(x|z)] + KL(q(z|x) || N(0, I)) >= -log p(x),

with a Bernoulli decoder over binary pixels (`recon`, one reparameterised sample of z) and the
Gaussian KL in closed form (`kl`). Training images are binarized anew at every step (dynamic
binarization: each pixel is 1 with probability its intensity, drawn inside jit from the step's
key), which acts as data augmentation; the test set is binarized once with a fixed seed, so every
run and every evaluation scores and draws the same binary digits.

Each evaluation reports the test set's mean `neg_elbo`, `recon` and `kl` and writes figures
(dljax/tasks/vae_figures.py); the final one adds `nll_iw`, the importance-weighted bound of Burda et
al. (2016) with `iw_samples` samples, tighter than the ELBO and approaching -log p(x) as k grows.
With `fid_classifier_workdir` set, every evaluation also scores decoded samples (Bernoulli means of
z ~ N(0, I)) with `fid_mnist_cnn` (dljax/tasks/fid.py), and `final` adds its real-vs-real floor.
Checkpoints carry the model spec, so `experiments.generate` samples from a run directory alone.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

from dljax.data import load_image_dataset
from dljax.data.device_feed import DeviceDataset
from dljax.errors import DljaxError
from dljax.evaluation import eval_batches, evaluate_batches
from dljax.experiment import Experiment, Hooks
from dljax.models import build_model, model_spec
from dljax.optim import make_optimizer
from dljax.steps import make_eval_step, make_train_step
from dljax.tasks import SampleOptions
from dljax.tasks.fid import make_sample_scorer
from dljax.tasks.vae_figures import decode_means, write_figures
from dljax.train_state import init_model_state


def bernoulli_log_likelihood(logits, x):
  """log p(x|z) [...] of binary images x [..., H, W, C] under independent Bernoulli pixels.

  For x in {0, 1}, x log sigmoid(l) + (1 - x) log sigmoid(-l) = log sigmoid((2x - 1) l): one
  transcendental per pixel instead of two (the importance-weighted bound spends most of its time
  here). `x` broadcasts against `logits`.
  """
  return jnp.sum(jax.nn.log_sigmoid((2.0 * x - 1.0) * logits), axis=(-3, -2, -1))


def gaussian_kl(mean, logvar):
  """KL(N(mean, exp(logvar)) || N(0, I)) [N], summed over the latents, in closed form."""
  return 0.5 * jnp.sum(jnp.exp(logvar) + mean**2 - 1.0 - logvar, axis=-1)


def binarize(rng, images):
  """Each pixel 1 with probability its intensity in [0, 1]."""
  return jax.random.bernoulli(rng, images).astype(images.dtype)


def make_vae_loss(beta: float = 1.0):
  """The loss (the step API's signature) whose value is the batch's mean `recon + beta * kl`:
  the negative ELBO at beta = 1; beta > 1 weighs the KL more (the beta-VAE of Higgins et al.,
  2017), beta < 1 less. Training binarizes the batch with part of `rng`."""

  def vae_loss(params, state, batch, rng, train):
    binarize_rng, z_rng = jax.random.split(rng)
    x = binarize(binarize_rng, batch["image"]) if train else batch["image"]
    logits, mean, logvar = state.apply_fn({"params": params}, x, z_rng)
    recon = -bernoulli_log_likelihood(logits, x)
    kl = gaussian_kl(mean, logvar)
    return jnp.mean(recon + beta * kl), ({"recon": jnp.mean(recon), "kl": jnp.mean(kl)}, None)

  return vae_loss


def iw_log_likelihood(apply_fn, params, x, rng, num_samples: int):
  """The importance-weighted lower bound on log p(x) [N] with `num_samples` samples of q(z|x):

    log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),  z_i ~ q(z|x).

  k = 1 is an unbiased estimate of the ELBO; the bound grows with k towards log p(x). All k * N
  latents are decoded in one batch: choose N so that k * N images fit in memory.
  """
  variables = {"params": params}
  mean, logvar = apply_fn(variables, x, method="encode")
  # [N, k, D]: each image's samples stay on the device that holds the image.
  eps = jax.random.normal(rng, (mean.shape[0], num_samples, mean.shape[1]), mean.dtype)
  z = mean[:, None] + jnp.exp(0.5 * logvar)[:, None] * eps
  logits = apply_fn(variables, z.reshape(-1, z.shape[-1]), method="decode")
  log_px_z = bernoulli_log_likelihood(logits.reshape(*z.shape[:2], *x.shape[1:]), x[:, None])
  # log N(z; 0, I) - log N(z; mean, std): the normalising constants cancel.
  log_w = log_px_z - 0.5 * jnp.sum(z**2, -1) + 0.5 * jnp.sum(eps**2 + logvar[:, None], -1)
  return jax.nn.logsumexp(log_w, axis=1) - math.log(num_samples)


def make_iw_loss(num_samples: int):
  """A loss (the step API's signature) whose value is the batch's mean importance-weighted
  negative log-likelihood bound."""

  def iw_loss(params, state, batch, rng, train):
    del train
    return -jnp.mean(iw_log_likelihood(state.apply_fn, params, batch["image"], rng, num_samples)), (
      {},
      None,
    )

  return iw_loss


def sample(state_tree: dict, meta: dict, options: SampleOptions) -> np.ndarray:
  """The task's sampling hook (dljax.tasks): `options.num_images` images [num, H, W, C] in [0, 1]
  (Bernoulli means of decoded z ~ N(0, I)) from a restored checkpoint tree and its meta."""
  model = build_model(meta["model"])
  z = jax.random.normal(jax.random.PRNGKey(options.seed), (options.num_images, model.latent_dim))
  return np.asarray(decode_means(model, state_tree["params"], z))


def _check_image_shape(image_shape, dataset: str):
  if len(image_shape) != 3 or image_shape[-1] != 1:
    raise DljaxError(
      f"the VAE models binarized grayscale images of shape [H, W, 1]; dataset {dataset!r} has "
      f"images of shape {list(image_shape)}; use --config.dataset=mnist5k, mnist, "
      f"fashion_mnist or binarized_mnist"
    )


def build_experiment(config, mesh) -> Experiment:
  data = load_image_dataset(config.dataset, config.data_dir or None, config.tfds_download)
  _check_image_shape(data.image_shape, config.dataset)
  if not config.beta >= 0:
    raise DljaxError(
      f"beta={config.beta}: the KL weight of the VAE loss must be >= 0 (1: the ELBO); "
      f"set --config.beta"
    )
  if config.iw_samples < 1:
    raise DljaxError(
      f"iw_samples={config.iw_samples}: the importance-weighted bound needs at "
      f"least 1 sample; set --config.iw_samples (1000 is the usual figure)"
    )
  spec = model_spec(config.model, image_shape=data.image_shape)  # saved with every checkpoint
  model = build_model(spec)
  train_data = DeviceDataset({"image": data.train_images}, config.batch_size, config.seed, mesh)
  num_steps = config.num_steps or config.num_epochs * train_data.steps_per_epoch
  tx = make_optimizer(config.optimizer, num_steps)
  example = jnp.zeros((1, *data.image_shape), jnp.float32)

  def init_state():
    return init_model_state(
      model, tx, jax.random.PRNGKey(config.seed), example, jax.random.PRNGKey(0)
    )

  # One fixed binarization of the test set (its own seed, the same in every run).
  test_images = (
    np.random.default_rng(config.test_binarization_seed).random(data.test_images.shape)
    < data.test_images
  ).astype(np.float32)
  elbo_batches = eval_batches({"image": test_images}, config.eval_batch_size, mesh)
  iw_batches = eval_batches({"image": test_images}, config.iw_batch_size, mesh, "iw_batch_size")
  eval_step = make_eval_step(make_vae_loss())  # beta = 1: the test figure is the ELBO itself
  iw_step = make_eval_step(make_iw_loss(config.iw_samples))
  eval_rng = jax.random.PRNGKey(config.seed + 1)
  fid_scorer, fid_floor_extras = make_sample_scorer(config.fid_classifier_workdir, data)
  fid_z = jax.random.normal(
    jax.random.PRNGKey(config.seed + 3), (len(test_images), model.latent_dim)
  )

  def evaluate(state):
    metrics = evaluate_batches(eval_step, state, elbo_batches, eval_rng)
    result = {"neg_elbo": metrics["loss"], "recon": metrics["recon"], "kl": metrics["kl"]}
    if int(state.step) >= num_steps:  # the final evaluation: the k-sample bound costs k ELBOs
      result["nll_iw"] = evaluate_batches(iw_step, state, iw_batches, eval_rng)["loss"]
    if fid_scorer is not None:  # as many samples as test images, as the floor has
      result.update(fid_scorer(np.asarray(decode_means(model, state.params, fid_z))))
    return result

  def after_eval(state, step, workdir):
    write_figures(
      model,
      state.params,
      test_images,
      data.test_labels,
      workdir,
      step,
      jax.random.PRNGKey(config.seed + 2),
    )

  return Experiment(
    init_state=init_state,
    train_step=make_train_step(
      make_vae_loss(config.beta), train_data.batch, steps_per_call=config.steps_per_call
    ),
    feed=train_data.feed,
    evaluate=evaluate,
    num_steps=num_steps,
    identity={"dataset": config.dataset, "model": spec},
    meta={"model": spec},
    hooks=Hooks(after_eval=after_eval, final_extras=fid_floor_extras),
    mesh=mesh,
  )
