"""Denoising diffusion (DDPM, Ho et al., 2020) with the cosine schedule of Nichol & Dhariwal (2021).

The forward process adds Gaussian noise to an image x_0 in [-1, 1] over T steps; in closed form

  x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,  eps ~ N(0, I),
  abar_t = cos^2(((t/T + s) / (1 + s)) pi/2) / cos^2((s / (1 + s)) pi/2),  s = 0.008,

and the U-Net learns to predict the noise (the "simple" loss, E ||eps - eps_theta(x_t, t)||^2 with
t uniform in 1..T). Sampling runs the reverse process on `steps` evenly spaced times
T = tau_S > ... > tau_0 = 0 with the DDIM update (Song et al., 2021)

  x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps_theta + sigma z,
  sigma = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev),

where x0_hat = (x_t - sqrt(1 - abar_t) eps_theta) / sqrt(abar_t), clipped to [-1, 1]: eta = 1
("ddpm") is ancestral sampling (with all T steps exactly DDPM's, variance beta-tilde), eta = 0
("ddim") the deterministic ODE-like sampler that stays good with few steps.

The final evaluation adds `neg_elbo_nats`, the negative ELBO (a bound on -log p(x), nats per
image) of the 8-bit test images under that T-step DDPM, with Ho et al.'s discretized Gaussian
decoder, and `bits_per_dim`; the sum over the T terms is estimated with `elbo_timesteps`
stratified times per image on the first `elbo_images` test images.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr

from dljax.errors import DljaxError
from dljax.parallel import split_batch, unsplit
from dljax.tasks import SampleOptions
from dljax.tasks.denoising import Method, build_denoising_experiment, sample_from_checkpoint

SAMPLERS = {"ddpm": 1.0, "ddim": 0.0}  # sampler name -> eta
HALF_BIN = 1.0 / 255.0  # half the width of one of 256 intensity levels on [-1, 1]


def cosine_alpha_bars(num_timesteps: int, s: float = 0.008) -> np.ndarray:
  """abar_t for t = 0..T [T + 1] (abar_0 = 1), each step's beta_t clipped to 0.999 as in Nichol &
  Dhariwal (the last steps would otherwise have beta = 1)."""
  f = np.cos((np.arange(num_timesteps + 1) / num_timesteps + s) / (1 + s) * np.pi / 2) ** 2
  betas = np.clip(1.0 - f[1:] / f[:-1], 0.0, 0.999)
  return np.concatenate([[1.0], np.cumprod(1.0 - betas)])


def check_steps(steps: int, num_timesteps: int):
  if steps > num_timesteps:
    raise DljaxError(
      f"{steps} sampler steps exceed the {num_timesteps} timesteps of the run's schedule; "
      f"sample with at most {num_timesteps} (--steps, --config.sample_steps)"
    )


def _noised(abar, x, eps):
  abar = abar[:, None, None, None]
  return jnp.sqrt(abar) * x + jnp.sqrt(1.0 - abar) * eps


def ddpm_loss(f, x, rng, alpha_bars: np.ndarray):
  """||eps - eps_theta(x_t, t)||^2 per image (mean over pixels), t uniform in 1..T."""
  num_timesteps = len(alpha_bars) - 1
  t_rng, eps_rng = jax.random.split(rng)
  t = jax.random.randint(t_rng, (x.shape[0],), 1, num_timesteps + 1)
  eps = jax.random.normal(eps_rng, x.shape)
  x_t = _noised(jnp.asarray(alpha_bars, jnp.float32)[t], x, eps)
  return jnp.mean((f(x_t, t / num_timesteps) - eps) ** 2, axis=(1, 2, 3))


def ddpm_sample(f, noise, rng, steps: int, sampler: str, trajectory: bool, alpha_bars: np.ndarray):
  """The DDIM update from x_T = noise over `steps` evenly spaced times (see the module doc)."""
  num_timesteps = len(alpha_bars) - 1
  check_steps(steps, num_timesteps)
  eta = SAMPLERS[sampler]
  times = np.round(np.linspace(num_timesteps, 0, steps + 1)).astype(np.int32)
  abar = jnp.asarray(alpha_bars, jnp.float32)

  def step(x, inputs):
    t, t_prev, key = inputs
    a, a_prev = abar[t], abar[t_prev]
    eps = f(x, t / num_timesteps)
    x0 = jnp.clip((x - jnp.sqrt(1.0 - a) * eps) / jnp.sqrt(a), -1.0, 1.0)
    eps = (x - jnp.sqrt(a) * x0) / jnp.sqrt(1.0 - a)  # the noise the clipped x0_hat implies
    sigma = eta * jnp.sqrt((1.0 - a_prev) / (1.0 - a) * (1.0 - a / a_prev))
    z = jax.random.normal(key, x.shape)
    x = jnp.sqrt(a_prev) * x0 + jnp.sqrt(1.0 - a_prev - sigma**2) * eps + sigma * z
    return x, (x if trajectory else None)

  keys = jax.random.split(rng, steps)
  x, path = jax.lax.scan(step, noise, (times[:-1], times[1:], keys))
  return x, path


def discretized_gaussian_log_likelihood(x, mean, log_scale):
  """log P(x) [same shape] of 8-bit values x in [-1, 1] under N(mean, exp(log_scale)^2)
  integrated over each value's bin of width 2/255, the end bins extended to -inf and +inf (Ho et
  al.'s decoder)."""
  inv = jnp.exp(-log_scale)
  upper, lower = inv * (x - mean + HALF_BIN), inv * (x - mean - HALF_BIN)
  # Phi(upper) - Phi(lower), computed on the side of 0 where the CDFs are not both near 1.
  mass = jnp.where(x - mean > 0, ndtr(-lower) - ndtr(-upper), ndtr(upper) - ndtr(lower))
  log_mass = jnp.log(jnp.maximum(mass, 1e-12))
  return jnp.where(
    x < -1.0 + HALF_BIN,
    jnp.log(jnp.maximum(ndtr(upper), 1e-12)),
    jnp.where(x > 1.0 - HALF_BIN, jnp.log(jnp.maximum(ndtr(-lower), 1e-12)), log_mass),
  )


def neg_elbo(f, x, rng, alpha_bars: np.ndarray, num_t: int):
  """-ELBO [N] in nats of 8-bit images x in [-1, 1] under the T-step DDPM with reverse variances
  beta-tilde (beta_1 for the decoder):

    L_T + sum_{t=2}^T KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) - log p(x_0 | x_1),

  each KL = beta_t / (2 alpha_t (1 - abar_{t-1})) ||eps - eps_theta(x_t, t)||^2 for these
  variances; the sum is (T - 1) times the mean over `num_t` stratified times per image."""
  num_timesteps = len(alpha_bars) - 1
  abar = jnp.asarray(alpha_bars, jnp.float32)
  alphas = abar[1:] / abar[:-1]
  pixel_sum = functools.partial(jnp.sum, axis=(1, 2, 3))
  n = x.shape[0]
  prior_mean, prior_var = jnp.sqrt(abar[-1]) * x, 1.0 - abar[-1]
  prior = 0.5 * pixel_sum(prior_var + prior_mean**2 - 1.0 - jnp.log(prior_var))

  decoder_rng, time_rng = jax.random.split(rng)
  eps = jax.random.normal(decoder_rng, x.shape)
  beta_1 = 1.0 - alphas[0]
  x_1 = _noised(jnp.full((n,), abar[1]), x, eps)
  mean = (x_1 - beta_1 / jnp.sqrt(1.0 - abar[1]) * f(x_1, 1.0 / num_timesteps)) / jnp.sqrt(
    alphas[0]
  )
  decoder = -pixel_sum(discretized_gaussian_log_likelihood(x, mean, 0.5 * jnp.log(beta_1)))

  def kl_at(k, key):
    offset_key, noise_key = jax.random.split(key)
    u = jax.random.uniform(offset_key, (n,))
    t = 2 + jnp.floor((k + u) * (num_timesteps - 1) / num_t).astype(jnp.int32)  # in 2..T
    noise = jax.random.normal(noise_key, x.shape)
    predicted = f(_noised(abar[t], x, noise), t / num_timesteps)
    weight = (1.0 - alphas[t - 1]) / (2.0 * alphas[t - 1] * (1.0 - abar[t - 1]))
    return weight * pixel_sum((noise - predicted) ** 2)

  keys = jax.random.split(time_rng, num_t)
  kls = jax.lax.map(lambda a: kl_at(*a), (jnp.arange(num_t), keys))
  return prior + decoder + (num_timesteps - 1) * jnp.mean(kls, axis=0)


def make_method(num_timesteps: int, elbo_images: int = 0, elbo_timesteps: int = 0) -> Method:
  """DDPM as a `Method`; with `elbo_images`, its final metrics are the ELBO on that many test
  images (in batches of 100, so a multiple of 100)."""
  alpha_bars = cosine_alpha_bars(num_timesteps)
  final_metrics = None
  if elbo_images:

    def final_metrics(network, params, test_images, rng):
      bound = jax.jit(  # each device bounds its share of the batch under a mesh
        lambda params, batch, key: unsplit(
          neg_elbo(network(params), split_batch(batch), key, alpha_bars, elbo_timesteps)
        )
      )
      images = test_images[:elbo_images]
      nats = np.concatenate(
        [
          np.asarray(bound(params, images[i : i + 100], jax.random.fold_in(rng, i)))
          for i in range(0, len(images), 100)
        ]
      )
      bits_per_dim = nats.mean() / math.prod(images.shape[1:]) / math.log(2)
      return {"neg_elbo_nats": float(nats.mean()), "bits_per_dim": float(bits_per_dim)}

  return Method(
    loss=functools.partial(ddpm_loss, alpha_bars=alpha_bars),
    sample=functools.partial(ddpm_sample, alpha_bars=alpha_bars),
    samplers=tuple(SAMPLERS),
    final_metrics=final_metrics,
  )


# experiments.generate's --steps and --sampler apply to this task's `sample` hook.
SAMPLER_OPTIONS = ("steps", "sampler")


def sample(state_tree: dict, meta: dict, options: SampleOptions):
  """The task's sampling hook (dljax.tasks; see dljax.tasks.denoising.sample_from_checkpoint)."""
  method = make_method(meta["num_timesteps"])
  return sample_from_checkpoint(method, state_tree, meta, options)


def build_experiment(config, mesh):
  check_steps(config.sample_steps, config.num_timesteps)
  method = make_method(config.num_timesteps, config.elbo_images, config.elbo_timesteps)
  return build_denoising_experiment(
    config, mesh, method, "diffusion", {"num_timesteps": config.num_timesteps}
  )
