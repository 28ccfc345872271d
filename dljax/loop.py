"""The one loop driver every dljax experiment runs through.

A task describes its experiment as an `Experiment` (how to initialise the state, the jitted train
step, what to feed it, how to evaluate); `run` does everything else: AOT compilation timed on its
own, resume from the newest checkpoint, metrics accumulated on device and fetched every
`log_every_steps`, progress bar, evaluation, periodic checkpoints, NaN/inf detection, clean
shutdown on SIGINT/SIGTERM, `metrics.jsonl`, TensorBoard, a PNG of the curves and `summary.json`.
"""

import dataclasses
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from dljax import distributed, parallel
from dljax.checkpoint import Checkpointer, abstract_like
from dljax.errors import DljaxError, NonFiniteLossError, TrainingInterrupted
from dljax.metrics_log import MetricsLog


@dataclasses.dataclass
class Experiment:
  """What a task hands the loop.

  init_state: () -> state, traceable (the loop jits it, or only traces it when resuming).
  train_step: jitted `(state, feed) -> (state, metrics)` with `state` donated; metrics are scalars.
    A plain function (e.g. one that steps a host environment between jitted calls) also works;
    it is then not compiled ahead of time.
  feed: host function `step -> feed` for the train step (device arrays; may be None).
  evaluate: `state -> {name: float}`, run every `eval_every_steps` and at the end; its result at
    the end is `summary.json`'s `final`.
  identity: what makes checkpoints of this experiment compatible (task, model, data...).
  meta: extra JSON saved with every checkpoint (e.g. a vocabulary).
  steps_per_call: how many steps one `train_step` call runs (its metrics then have that leading
    axis); `num_steps` and the log/eval/checkpoint intervals must be multiples of it.
  after_eval: optional `(state, step, workdir) -> None`, e.g. writing text samples.
  final_extras: optional `(state, seconds) -> dict` merged into `final` (e.g. env steps/s).
  """

  init_state: Callable[[], Any]
  train_step: Callable
  feed: Callable[[int], Any]
  evaluate: Callable[[Any], dict]
  num_steps: int
  identity: dict
  mesh: jax.sharding.Mesh
  meta: dict = dataclasses.field(default_factory=dict)
  steps_per_call: int = 1
  after_eval: Callable | None = None
  final_extras: Callable | None = None


class _StopSignals:
  """SIGINT/SIGTERM: the first asks for a clean stop, a flag the loop checks between steps (it
  then saves a checkpoint); a second one ends the process at once.

  A step can wait forever (e.g. an XLA:CPU deadlock, docs/xla-cpu-qr-deadlock.md) with the main
  thread blocked inside jaxlib, where Python never runs its signal handlers. So the signals also
  go to a wakeup pipe (`signal.set_wakeup_fd`, written by the C-level handler) that a watcher
  thread reads: it sets the flag on the first signal and, on the second, names the checkpoint a
  rerun resumes from and exits with 128 + the signal number without waiting for anything.
  """

  SIGNALS = (signal.SIGINT, signal.SIGTERM)

  def __init__(self, checkpointer: Checkpointer):
    self.received = None
    self._checkpointer = checkpointer

  def __enter__(self):
    self._read_fd, self._write_fd = os.pipe()
    os.set_blocking(self._write_fd, False)  # required by set_wakeup_fd
    self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
    self._previous_wakeup_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
    self._watcher = threading.Thread(target=self._watch, name="dljax-stop-signals", daemon=True)
    self._watcher.start()
    return self

  def _handle(self, signum, frame):
    """The Python-level handler: the watcher thread acts on the signal (it must be installed so
    that SIGINT does not raise KeyboardInterrupt and SIGTERM does not kill the process)."""

  def _watch(self):
    while data := os.read(self._read_fd, 64):  # b"" once __exit__ closes the write end
      for signum in data:  # one byte per signal, for any signal with a Python-level handler
        if signum not in self.SIGNALS:
          continue
        if self.received is None:
          self.received = signum
          os.write(
            2,
            f"\n{signal.Signals(signum).name} received: stopping after the step in "
            f"progress (send it again to exit at once).\n".encode(),
          )
        else:
          self._exit_now(signum)

  def _exit_now(self, signum: int):
    try:
      os.write(2, self._exit_message(signum).encode())
    finally:  # a clean exit would wait for the (possibly hung) XLA threads
      os._exit(128 + signum)

  def _exit_message(self, signum: int) -> str:
    steps = self._checkpointer.committed_steps()
    resume = (
      f"The last checkpoint is step {steps[-1]} in {self._checkpointer.directory}: run the "
      f"same command again to resume from it."
      if steps
      else f"No checkpoint was saved yet in {self._checkpointer.directory}: running the same "
      f"command again starts over."
    )
    return (
      f"\n{signal.Signals(signum).name} received again: exiting now, without waiting for "
      f"the step in progress or saving. {resume}\n"
    )

  def __exit__(self, *exc):
    for s, handler in self._previous.items():
      signal.signal(s, handler)
    signal.set_wakeup_fd(self._previous_wakeup_fd)
    os.close(self._write_fd)
    self._watcher.join()
    os.close(self._read_fd)


def _fetch(pending: list[tuple[int, dict]], steps_per_call: int):
  """One device-to-host transfer for all metrics accumulated since the last fetch.

  Returns the step index of every metric value and the values, flattened over calls and steps.
  """
  steps = (np.array([s for s, _ in pending])[:, None] + np.arange(steps_per_call)).reshape(-1)
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs).reshape(-1), *[m for _, m in pending])
  return steps, jax.device_get(stacked)


def _check_intervals(exp: Experiment, config):
  k = exp.steps_per_call
  for name, value in [
    ("num_steps", exp.num_steps),
    ("log_every_steps", config.log_every_steps),
    ("eval_every_steps", config.eval_every_steps),
    ("checkpoint_every_steps", config.checkpoint_every_steps),
  ]:
    if value % k:
      raise DljaxError(
        f"{name}={value} is not a multiple of steps_per_call={k}; make it one "
        f"(--config.{name}=...) or change --config.steps_per_call"
      )


@jax.jit
def all_finite(tree) -> jax.Array:
  leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in leaves]))


class _Run:
  """One invocation of the loop: the state, its step, pending metrics, logs and checkpoints."""

  def __init__(self, exp: Experiment, config, workdir: str):
    self.exp, self.config, self.workdir = exp, config, workdir
    _check_intervals(exp, config)
    os.makedirs(workdir, exist_ok=True)
    self.checkpointer = Checkpointer(
      os.path.join(workdir, "checkpoints"), exp.identity, keep=config.keep_checkpoints
    )
    replicated = NamedSharding(exp.mesh, P())
    self.resume_step = self.checkpointer.latest_step()
    if self.resume_step is not None:
      self.checkpointer.check_identity(self.resume_step)
      self.state = self.checkpointer.restore(
        self.resume_step, abstract_like(exp.init_state, replicated)
      )
    else:
      self.state = jax.jit(exp.init_state, out_shardings=replicated)()
    self.step = self.last_saved = self.resume_step or 0
    t0 = time.perf_counter()
    self.train_step = exp.train_step
    if hasattr(exp.train_step, "lower"):  # a host-driven step (a gymnasium env) has no AOT form
      self.train_step = exp.train_step.lower(self.state, exp.feed(self.step)).compile()
    self.compile_time = time.perf_counter() - t0
    self.eval_time = 0.0
    self.pending: list[tuple[int, dict]] = []
    self.bounded_dispatch = parallel.needs_bounded_dispatch(exp.mesh)
    self.log = MetricsLog(workdir, self.step)
    self.files_dir = distributed.output_dir(workdir)  # other processes write to a scratch dir

  def non_finite(self, what: str, step: int) -> NonFiniteLossError:
    return NonFiniteLossError(
      f"the {what} became NaN or inf at step {step}; training stopped. The last good "
      f"checkpoint (step {self.last_saved}) is kept in {self.checkpointer.directory}. Fix: lower "
      f"the learning rate or clip gradients (the config's optimizer block(s), e.g. "
      f"--config.optimizer.grad_clip_norm=1.0), then rerun the same command to resume from that "
      f"checkpoint."
    )

  def flush(self) -> dict[str, float]:
    """Fetches pending metrics, stops on non-finite ones, logs their means."""
    if not self.pending:
      return {}
    steps, metrics = _fetch(self.pending, self.exp.steps_per_call)
    self.pending.clear()
    for name, values in metrics.items():  # every loss, norm and statistic, whatever its name
      bad = ~np.isfinite(values)
      if bad.any():
        raise self.non_finite(name, int(steps[bad][0]))
    means = {k: float(np.mean(v)) for k, v in metrics.items()}
    self.log.write(int(steps[-1]) + 1, "train", means)
    return means

  def evaluate(self) -> dict[str, float]:
    self.flush()
    t0 = time.perf_counter()
    metrics = self.exp.evaluate(self.state)
    self.log.write(self.step, "eval", metrics)
    if self.exp.after_eval is not None:
      self.exp.after_eval(self.state, self.step, self.files_dir)
    self.eval_time += time.perf_counter() - t0
    return metrics

  def save(self):
    """Checkpoints the state unless already saved; never saves a non-finite state."""
    self.flush()
    if self.last_saved == self.step:
      return
    if not all_finite(self.state):
      raise self.non_finite("parameters", self.step)
    self.checkpointer.save(self.step, self.state, self.exp.meta)
    self.last_saved = self.step

  def train(self, stop: "_StopSignals", progress):
    exp, config = self.exp, self.config
    log_every = max(1, config.log_every_steps)
    while self.step < exp.num_steps:
      self.state, metrics = self.train_step(self.state, exp.feed(self.step))
      if self.bounded_dispatch and self.pending:
        jax.block_until_ready(self.pending[-1][1])  # step k-1 done; step k stays queued
      self.pending.append((self.step, metrics))
      self.step += exp.steps_per_call
      at_log_step = self.step % log_every == 0 or self.step == exp.num_steps
      if at_log_step:
        progress.set_postfix({k: f"{v:.4g}" for k, v in self.flush().items()}, refresh=False)
        progress.update(self.step - progress.n)
      if (
        config.eval_every_steps
        and self.step % config.eval_every_steps == 0
        and self.step < exp.num_steps
      ):
        self.evaluate()
      if config.checkpoint_every_steps and self.step % config.checkpoint_every_steps == 0:
        self.save()
      received = distributed.agreed_stop_signal(stop.received, at_log_step)  # all processes
      if received is not None:
        self.save()
        self.checkpointer.wait()
        raise TrainingInterrupted(
          f"{signal.Signals(received).name} received: stopped at step {self.step} and saved "
          f"a checkpoint in {self.checkpointer.directory}. Run the same command again to resume.",
          exit_code=128 + received,
        )


def run(experiment: Experiment, config, workdir: str, start_time: float | None = None) -> dict:
  """Trains `experiment` to `num_steps` in `workdir` (resuming if it holds checkpoints)."""
  from tqdm import tqdm

  start_time = time.time() if start_time is None else start_time
  r = _Run(experiment, config, workdir)
  start_step = r.step
  progress = tqdm(
    total=experiment.num_steps,
    initial=r.step,
    unit="step",
    dynamic_ncols=True,
    mininterval=1.0,
    disable=config.quiet or not distributed.is_writer(),
  )
  t0 = time.perf_counter()
  try:
    with _StopSignals(r.checkpointer) as stop:
      r.train(stop, progress)
    train_time = time.perf_counter() - t0 - r.eval_time
    final = r.evaluate()
    if experiment.final_extras is not None:
      final.update(experiment.final_extras(r.state, train_time))
    r.save()
    r.checkpointer.wait()
  finally:
    progress.close()
    r.log.close()
    r.log.plot(os.path.join(workdir, "learning_curves.png"))

  steps_run = r.step - start_step
  summary = {
    "config": config.to_dict(),
    "final": final,
    "steps": r.step,
    "resumed_from_step": r.resume_step,
    "wall_time_s": time.time() - start_time,
    "compile_time_s": r.compile_time,
    "train_time_s": train_time,
    "step_time_ms": 1e3 * train_time / steps_run if steps_run else math.nan,
    "devices": f"{experiment.mesh.size} x {jax.devices()[0].device_kind}",
  }
  if distributed.is_writer():
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump(summary, f, indent=2)
  return summary
