"""Where a training set lives on the data mesh: the `data_placement` config field.

- "replicated" (the default): every process reads the whole training split and every device
  holds all of it; each step's batch is drawn from one global permutation, so the batches are
  those of a 1-device run, whatever the device count (`DeviceDataset`).
- "sharded": each process reads only its part of the split (`ProcessShard`) and each of its
  devices holds 1/N of the examples, N the devices of the mesh; every device shuffles and batches
  its own examples (`ShardedDeviceDataset`). Reading and memory per device shrink with N, for
  datasets too large to replicate; the batches differ from a 1-device run.

Only the training split is placed so; evaluation sets are read whole (dljax.evaluation).
"""

import dataclasses

import jax
import numpy as np

from dljax.data.device_feed import DeviceDataset
from dljax.data.sharded_feed import ShardedDeviceDataset
from dljax.errors import bad_value

PLACEMENTS = ("replicated", "sharded")


@dataclasses.dataclass(frozen=True)
class ProcessShard:
  """Process `index` of `count`: the rows of a split it reads."""

  index: int
  count: int

  def rows(self, num_examples: int) -> range:
    """Its contiguous part of a split of `num_examples`. The parts are equal (the last
    `num_examples % count` examples are read by no one): a data-sharded global array needs
    every process to hold as many rows."""
    size = num_examples // self.count
    return range(self.index * size, (self.index + 1) * size)


def process_shard(placement: str) -> ProcessShard | None:
  """The part of a training split this process reads: None (all of it) when replicated."""
  if placement not in PLACEMENTS:
    raise bad_value("data_placement", placement, " or ".join(map(repr, PLACEMENTS)))
  if placement == "replicated":
    return None
  return ProcessShard(jax.process_index(), jax.process_count())


def device_dataset(
  arrays: dict[str, np.ndarray], batch_size: int, seed: int, mesh, shard: ProcessShard | None
) -> DeviceDataset:
  """The training set on the mesh: `arrays` are the whole split (`shard` None, replicated) or
  this process's part of it (sharded over the devices)."""
  if shard is None:
    return DeviceDataset(arrays, batch_size, seed, mesh)
  return ShardedDeviceDataset(arrays, batch_size, seed, mesh)
