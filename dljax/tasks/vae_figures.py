"""Figures of a trained VAE, written into WORKDIR/figures at every evaluation.

  samples_stepN.png          decoded z ~ N(0, I) (a fixed batch of z, so steps compare)
  reconstructions_stepN.png  rows of test digits, each above its reconstruction
  interpolation_stepN.png    decoded straight lines between the codes of two test digits
  with latent_dim == 2:
  manifold_stepN.png         the decoder over a grid of Gaussian quantiles of (z1, z2)
  latent_scatter_stepN.png   the test set's posterior means, coloured by digit (labelled data)

Images are the decoder's Bernoulli means (pixel probabilities), as is usual for VAE figures.
"""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from dljax.metrics_log import import_pyplot
from dljax.parallel import split_batch, unsplit
from dljax.tasks.image_grid import save_grid

NUM_SAMPLES = 64  # an 8 x 8 grid
NUM_PAIRS = 32  # reconstructions: 4 blocks of 8 digits above their 8 reconstructions
NUM_LINES, LINE_STEPS = 8, 10  # interpolations: 8 lines of 10 images
MANIFOLD_SIDE = 15  # a 15 x 15 grid over the 2-d latent space


@functools.partial(jax.jit, static_argnums=0)
def decode_means(model, params, z):
  """The decoder's Bernoulli means (pixel probabilities) [N, H, W, C] for latents z [N, D], each
  device decoding its share of z under a mesh."""
  logits = model.apply({"params": params}, split_batch(z), method="decode")
  return unsplit(jax.nn.sigmoid(logits))


@functools.partial(jax.jit, static_argnums=0)
def _encode_means(model, params, x):
  return model.apply({"params": params}, x, method="encode")[0]


def _encode_all(model, params, images, batch_size: int = 500) -> np.ndarray:
  return np.concatenate(
    [
      _encode_means(model, params, images[i : i + batch_size])
      for i in range(0, len(images), batch_size)
    ]
  )


def _reconstructions(model, params, images):
  originals = images[:NUM_PAIRS]
  recon = np.asarray(decode_means(model, params, _encode_means(model, params, originals)))
  rows = [
    block for i in range(0, NUM_PAIRS, 8) for block in (originals[i : i + 8], recon[i : i + 8])
  ]
  return np.concatenate(rows)


def _interpolations(model, params, images):
  codes = _encode_means(model, params, images[: 2 * NUM_LINES])
  start, end = codes[:NUM_LINES], codes[NUM_LINES:]
  t = jnp.linspace(0.0, 1.0, LINE_STEPS)[None, :, None]
  z = (1 - t) * start[:, None] + t * end[:, None]  # [lines, steps, D]
  return np.asarray(decode_means(model, params, z.reshape(-1, z.shape[-1])))


def _manifold(model, params):
  # Equal-probability steps of the prior (Kingma & Welling's figure 4): the 5 % to 95 % quantiles.
  q = jax.scipy.special.ndtri(jnp.linspace(0.05, 0.95, MANIFOLD_SIDE))
  z = jnp.stack(jnp.meshgrid(q, q[::-1], indexing="xy"), -1).reshape(-1, 2)
  return np.asarray(decode_means(model, params, z))


def _save_scatter(codes, labels, path: str):
  plt = import_pyplot()
  fig, ax = plt.subplots(figsize=(5, 4.5))
  points = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=4, vmin=-0.5, vmax=9.5)
  fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
  ax.set_xlabel("$z_1$ (posterior mean)")
  ax.set_ylabel("$z_2$")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def write_figures(
  model,
  params,
  test_images: np.ndarray,
  test_labels: np.ndarray | None,
  workdir: str,
  step: int,
  rng,
) -> None:
  """All the figures of `model` with `params` at `step` (see the module docstring)."""
  directory = os.path.join(workdir, "figures")
  os.makedirs(directory, exist_ok=True)

  def path(kind):
    return os.path.join(directory, f"{kind}_step{step:06d}.png")

  z = jax.random.normal(rng, (NUM_SAMPLES, model.latent_dim))
  save_grid(np.asarray(decode_means(model, params, z)), path("samples"))
  save_grid(_reconstructions(model, params, test_images), path("reconstructions"), ncol=8)
  save_grid(_interpolations(model, params, test_images), path("interpolation"), ncol=LINE_STEPS)
  if model.latent_dim == 2:
    save_grid(_manifold(model, params), path("manifold"), ncol=MANIFOLD_SIDE)
    if test_labels is not None:
      _save_scatter(_encode_all(model, params, test_images), test_labels, path("latent_scatter"))
