"""Datasets that live on the device and are shuffled and batched inside jitted code.

The host only hands the train step a small pytree (`EpochFeed`: the arrays, this epoch's
permutation and a data key) that changes once per epoch; `DeviceDataset.batch` picks the step's
examples inside jit. The permutation of epoch `e` is a pure function of (seed, e), so a resumed
run sees exactly the batches an uninterrupted run would.
"""

import flax
import jax
import numpy as np

from dljax import parallel
from dljax.errors import DljaxError


@flax.struct.dataclass
class EpochFeed:
  arrays: dict
  perm: jax.Array
  key: jax.Array


def leading_size(arrays: dict[str, np.ndarray]) -> int:
  """The number of examples in `arrays`, which must all have it."""
  sizes = {len(v) for v in arrays.values()}
  if len(sizes) != 1:
    raise ValueError(f"arrays differ in length: { {k: len(v) for k, v in arrays.items()} }")
  return sizes.pop()


class DeviceDataset:
  """`arrays` (equal leading size) replicated on every device of `mesh`, served in batches."""

  def __init__(self, arrays: dict[str, np.ndarray], batch_size: int, seed: int, mesh):
    self.num_examples = leading_size(arrays)
    if batch_size > self.num_examples:
      raise DljaxError(
        f"batch_size={batch_size} is larger than the dataset "
        f"({self.num_examples} examples); lower --config.batch_size"
      )
    parallel.check_batch_divisible(batch_size, mesh)
    self.batch_size = batch_size
    self.steps_per_epoch = self.num_examples // batch_size  # the last partial batch is dropped
    self._arrays = parallel.replicate(arrays, mesh)
    self._key = parallel.replicate(jax.random.PRNGKey(seed), mesh)
    self._permute = jax.jit(
      lambda key, epoch: jax.random.permutation(jax.random.fold_in(key, epoch), self.num_examples)
    )
    self._cached: tuple[int, EpochFeed] | None = None

  def feed(self, step: int) -> EpochFeed:
    """The feed for global step `step`: computed on device once per epoch."""
    epoch = step // self.steps_per_epoch
    if self._cached is None or self._cached[0] != epoch:
      perm = self._permute(self._key, epoch)
      self._cached = (epoch, EpochFeed(self._arrays, perm, jax.random.fold_in(self._key, epoch)))
    return self._cached[1]

  def batch(self, feed: EpochFeed, step: jax.Array) -> dict:
    """Inside jit: the examples of `step`, split over the data mesh."""
    start = (step % self.steps_per_epoch) * self.batch_size
    indices = jax.lax.dynamic_slice_in_dim(feed.perm, start, self.batch_size)
    return {k: parallel.gather_batch(v, indices) for k, v in feed.arrays.items()}
