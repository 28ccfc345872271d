"""Checkpoints with orbax: periodic saves, keep the last k, resume from the newest.

Each checkpoint holds the state pytree and a JSON `meta` item. `meta["identity"]` says which
experiment wrote it (task, model, environment...): a WORKDIR holding another experiment's
checkpoints is refused rather than overwritten. Tasks may add more (a language model's vocabulary),
so that a checkpoint directory alone is enough to use the model.
"""

import json
import os

import jax
import orbax.checkpoint as ocp

from dljax.errors import CheckpointMismatchError, DljaxError


class Checkpointer:
  def __init__(self, directory: str, identity: dict, keep: int = 3):
    self.directory = os.path.abspath(directory)
    # Compared with what JSON gives back, so tuples must already be lists.
    self.identity = json.loads(json.dumps(identity))
    self._manager = ocp.CheckpointManager(
      self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
    )

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def committed_steps(self) -> list[int]:
    """The steps whose checkpoint is complete on disk (a resumed run picks the last), without
    those an asynchronous save is still writing."""
    return sorted(ocp.path.step.checkpoint_steps(self.directory))

  def read_meta(self, step: int) -> dict:
    try:
      return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta
    except Exception as e:  # orbax raises several types for unreadable files
      raise self._unreadable(step, e) from e

  def check_identity(self, step: int) -> dict:
    """Reads `meta` at `step` and refuses checkpoints written by a different experiment."""
    meta = self.read_meta(step)
    if meta.get("identity") != self.identity:
      raise CheckpointMismatchError(
        f"{self.directory} holds checkpoints of a different experiment:\n"
        f"  found:    {meta.get('identity')}\n  expected: {self.identity}\n"
        f"Nothing was overwritten. Use another --workdir, or delete that directory to start over."
      )
    return meta

  def restore(self, step: int, abstract_state):
    """Restores the state at `step` into the shapes, dtypes and shardings of `abstract_state`."""
    try:
      restored = self._manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state))
      )
    except Exception as e:
      raise self._unreadable(step, e) from e
    return restored.state

  def restore_raw(self, step: int) -> dict:
    """The saved state as a plain dict tree on the default device, without knowing its shape:
    what inference tools need when they only have the checkpoint directory."""
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    try:
      restored = self._manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(fallback_sharding=device))
      )
    except Exception as e:
      raise self._unreadable(step, e) from e
    return restored.state

  def save(self, step: int, state, meta: dict | None = None, wait: bool = False):
    meta = {"identity": self.identity, **(meta or {})}
    # Orbax copies device arrays to host before save() returns, so the caller may donate `state`.
    self._manager.save(
      step,
      args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
    )
    if wait:
      self.wait()

  def wait(self):
    self._manager.wait_until_finished()

  def _unreadable(self, step: int, error: Exception) -> DljaxError:
    return DljaxError(
      f"the checkpoint for step {step} in {self.directory} cannot be read "
      f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). "
      f"Nothing was deleted. Move {os.path.join(self.directory, str(step))} aside to resume from "
      f"the previous checkpoint, or use a fresh --workdir."
    )


def abstract_like(init_fn, sharding) -> object:
  """The state's shapes and dtypes, placed with `sharding`, without running the initialiser."""
  return jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), jax.eval_shape(init_fn)
  )
