"""Conditional flow matching with straight paths (rectified flow; Lipman et al., 2023, Liu et al.,
2023): a velocity field whose ODE carries noise to images.

Noise x_0 ~ N(0, I) and an image x_1 in [-1, 1] are joined by the straight path
x_t = (1 - t) x_0 + t x_1, t in [0, 1], whose velocity is x_1 - x_0; the U-Net learns

  min E_{t ~ U(0, 1), x_0, x_1} ||v_theta(x_t, t) - (x_1 - x_0)||^2,

whose minimiser is the marginal velocity field: integrating dx/dt = v_theta(x, t) from t = 0 to 1
transports N(0, I) to the data distribution. Samplers: "euler" (one network evaluation per step)
and "heun" (Heun's second-order method: an Euler step, then the average of the velocities at both
ends; two evaluations per step).
"""

import jax
import jax.numpy as jnp

from dljax.tasks import SampleOptions
from dljax.tasks.denoising import Method, build_denoising_experiment, sample_from_checkpoint

SAMPLERS = ("euler", "heun")


def flow_matching_loss(f, x, rng):
  """||v_theta(x_t, t) - (x_1 - x_0)||^2 per image (mean over pixels), t uniform in [0, 1]."""
  t_rng, noise_rng = jax.random.split(rng)
  t = jax.random.uniform(t_rng, (x.shape[0],))
  noise = jax.random.normal(noise_rng, x.shape)
  x_t = (1.0 - t)[:, None, None, None] * noise + t[:, None, None, None] * x
  return jnp.mean((f(x_t, t) - (x - noise)) ** 2, axis=(1, 2, 3))


def flow_sample(f, noise, rng, steps: int, sampler: str, trajectory: bool):
  """x_1 from x_0 = noise: `steps` Euler or Heun steps of size 1 / steps (deterministic: `rng` is
  unused)."""
  del rng
  dt = 1.0 / steps

  def step(x, t):
    v = f(x, t)
    if sampler == "heun":
      v = 0.5 * (v + f(x + dt * v, t + dt))
    x = x + dt * v
    return x, (x if trajectory else None)

  return jax.lax.scan(step, noise, jnp.arange(steps) * dt)


METHOD = Method(loss=flow_matching_loss, sample=flow_sample, samplers=SAMPLERS)


# experiments.generate's --steps and --sampler apply to this task's `sample` hook.
SAMPLER_OPTIONS = ("steps", "sampler")


def sample(state_tree: dict, meta: dict, options: SampleOptions):
  """The task's sampling hook (dljax.tasks; see dljax.tasks.denoising.sample_from_checkpoint)."""
  return sample_from_checkpoint(METHOD, state_tree, meta, options)


def build_experiment(config, mesh):
  return build_denoising_experiment(config, mesh, METHOD, "flow_matching")
