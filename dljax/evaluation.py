"""Evaluation over a fixed, device-resident set of examples (test images, val windows...)."""

import jax
import jax.numpy as jnp

from dljax import parallel
from dljax.errors import bad_value


def _batch_size(batch) -> int:
  return jax.tree.leaves(batch)[0].shape[0]


def eval_batches(arrays: dict, batch_size: int, mesh, name: str = "eval_batch_size") -> list[dict]:
  """`arrays` (equal leading size) cut into device-resident batches, split over the mesh where
  the batch size allows it (a last, smaller batch may stay replicated). `name`: the config field
  `batch_size` comes from, for the error."""
  if batch_size < 1:
    raise bad_value(name, batch_size, "at least 1")
  n = _batch_size(arrays)
  batches = []
  for start in range(0, n, batch_size):
    batch = {k: v[start : start + batch_size] for k, v in arrays.items()}
    batches.append(jax.device_put(batch, parallel.batch_sharding(mesh, _batch_size(batch))))
  return batches


def evaluate_batches(eval_step, state, batches, rng) -> dict[str, float]:
  """Example-weighted means of `eval_step(state, batch, rng)` over `batches`, fetched once.

  Batch i gets `fold_in(rng, i)`: with a fixed `rng`, an evaluation that samples (a VAE's) gives
  the same figure in every run and after every resume.
  """
  sums = None
  for i, batch in enumerate(batches):
    n = _batch_size(batch)
    metrics = jax.tree.map(
      lambda m, n=n: m * n, eval_step(state, batch, jax.random.fold_in(rng, i))
    )
    sums = metrics if sums is None else jax.tree.map(jnp.add, sums, metrics)
    jax.block_until_ready(sums)  # one batch in flight: see parallel.needs_bounded_dispatch
  total = sum(_batch_size(b) for b in batches)
  return {k: float(v) / total for k, v in jax.device_get(sums).items()}
