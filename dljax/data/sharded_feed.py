"""A training set split over the devices of the data mesh, each device batching its own examples.

The `data_placement = "sharded"` counterpart of `DeviceDataset` (see dljax.data.placement), with
the same interface: `feed(step)` once per epoch on the host, `batch(feed, step)` inside jit. Each
process passes only its part of the split; the global dataset is one array split along `data`
(`jax.make_array_from_process_local_data`), each device holding as many examples. Every epoch
each device draws its own permutation of its examples from (seed, epoch, its index on the mesh),
so a resumed run sees exactly the batches an uninterrupted one would; the rows device d serves
are rows d * B/N .. (d + 1) * B/N - 1 of the global batch B, as `parallel.split_batch` lays out.
"""

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from dljax import parallel
from dljax.data.device_feed import DeviceDataset, EpochFeed, leading_size
from dljax.errors import DljaxError

DATA = P(parallel.DATA_AXIS)


class ShardedDeviceDataset(DeviceDataset):
  """This process's part of a training set (`arrays`), split evenly over its devices of `mesh`.

  It keeps `DeviceDataset.feed` (the per-epoch cache) and replaces how the arrays are placed
  and how a batch is picked.
  """

  def __init__(self, arrays: dict[str, np.ndarray], batch_size: int, seed: int, mesh):
    local_devices = len(mesh.local_devices)
    if local_devices * jax.process_count() != mesh.size:  # each process read an equal part
      raise DljaxError(
        f"data_placement='sharded' needs as many devices of every process on the data mesh; "
        f"it has {local_devices} of this process's {jax.local_device_count()} and {mesh.size} "
        f"over {jax.process_count()} processes: set --config.num_devices=0 (all devices)"
      )
    # Equal shards: the last (local examples % local devices) examples are dropped.
    self.device_examples = leading_size(arrays) // local_devices
    self.num_examples = self.device_examples * mesh.size
    parallel.check_batch_divisible(batch_size, mesh)
    self.device_batch = batch_size // mesh.size
    if self.device_batch > self.device_examples:
      raise DljaxError(
        f"batch_size={batch_size} takes {self.device_batch} examples from each of the "
        f"{mesh.size} devices, which hold {self.device_examples} each with "
        f"data_placement='sharded'; lower --config.batch_size"
      )
    self.batch_size = batch_size
    self.steps_per_epoch = self.device_examples // self.device_batch  # partial batches dropped
    self._mesh = mesh
    sharding = NamedSharding(mesh, DATA)
    kept = self.device_examples * local_devices
    self._arrays = {
      k: jax.make_array_from_process_local_data(
        sharding, v[:kept], (self.num_examples, *v.shape[1:])
      )
      for k, v in arrays.items()
    }
    self._key = parallel.replicate(jax.random.PRNGKey(seed), mesh)
    self._permute = jax.jit(
      jax.shard_map(self._device_permutation, mesh=mesh, in_specs=(P(), P()), out_specs=DATA)
    )
    self._cached: tuple[int, EpochFeed] | None = None

  def _device_permutation(self, key, epoch):
    """On each device: a permutation of its examples, [1, device_examples]."""
    key = jax.random.fold_in(jax.random.fold_in(key, epoch), jax.lax.axis_index(parallel.DATA_AXIS))
    return jax.random.permutation(key, self.device_examples)[None]

  def batch(self, feed: EpochFeed, step: jax.Array) -> dict:
    """Inside jit: the examples of `step`, each device's rows picked from its own examples."""
    start = (step % self.steps_per_epoch) * self.device_batch

    def device_rows(arrays, perm, start):
      indices = jax.lax.dynamic_slice_in_dim(perm[0], start, self.device_batch)
      return {k: v[indices] for k, v in arrays.items()}

    pick = jax.shard_map(device_rows, mesh=self._mesh, in_specs=(DATA, DATA, P()), out_specs=DATA)
    return pick(feed.arrays, feed.perm, start)
