"""Reading TFDS datasets without TensorFlow, through `tfds.data_source` (array_record files).

Preparing a dataset needs TensorFlow (the `tfds` extra) and network access; reading one does not.
Every "cannot read" path ends in one `DljaxError` saying why and naming the offline alternative.
"""

from dljax.data.placement import ProcessShard
from dljax.errors import DljaxError


def tfds_unavailable(name: str, reason: str, offline: str) -> DljaxError:
  return DljaxError(
    f"TFDS dataset {name!r} could not be read, downloaded or prepared: {reason}\n"
    f"Fix: prepare it once on a machine with network access with the TensorFlow extra "
    f"(pip install -e '.[tfds]' && tfds build {name} --file_format=array_record) and pass its "
    f"location with --config.data_dir, or work offline with {offline}."
  )


def read_tfds_split(
  name: str,
  split: str,
  data_dir: str | None,
  download: bool,
  offline: str,
  shard: ProcessShard | None = None,
) -> list[dict]:
  """The examples of one split as dicts of numpy values: all of them, or only `shard`'s part.

  A data source reads records at random, so a process reads only its own: the same contiguous,
  equal parts as `tfds.split_for_jax_process(split, drop_remainder=True)`, with the arithmetic
  the embedded datasets share (and that `tfds.testing.mock_data`, which ignores sub-splits, can
  test)."""
  import tensorflow_datasets as tfds

  try:
    source = tfds.data_source(
      name,
      split=split,
      data_dir=data_dir,
      download=download,
      builder_kwargs={"file_format": "array_record"},
    )
    rows = range(len(source)) if shard is None else shard.rows(len(source))
    return [source[i] for i in rows]
  except Exception as e:  # TFDS raises many types here (missing files, no TF, no network)
    builder = tfds.builder(name, data_dir=data_dir)
    reason = f"it is not prepared in {builder.data_dir}"
    if download:
      first_line = str(e).splitlines()[0] if str(e) else ""
      reason += f" and preparing it failed ({type(e).__name__}: {first_line})"
    else:
      reason += " and downloading is off"
    raise tfds_unavailable(name, reason, offline) from e
