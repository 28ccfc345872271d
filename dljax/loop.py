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
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from dljax.checkpoint import Checkpointer, abstract_like
from dljax.errors import NonFiniteLossError, TrainingInterrupted
from dljax.metrics_log import MetricsLog


@dataclasses.dataclass
class Experiment:
  """What a task hands the loop.

  init_state: () -> state, traceable (the loop jits it, or only traces it when resuming).
  train_step: jitted `(state, feed) -> (state, metrics)` with `state` donated; metrics are scalars.
  feed: host function `step -> feed` for the train step (device arrays; may be None).
  evaluate: `state -> {name: float}`, run every `eval_every_steps` and at the end; its result at
    the end is `summary.json`'s `final`.
  identity: what makes checkpoints of this experiment compatible (task, model, data...).
  meta: extra JSON saved with every checkpoint (e.g. a vocabulary).
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
  after_eval: Callable | None = None
  final_extras: Callable | None = None


class _StopSignals:
  """Turns SIGINT/SIGTERM into a flag the loop checks between steps."""

  def __init__(self):
    self.received = None

  def __enter__(self):
    self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
    return self

  def _handle(self, signum, frame):
    self.received = signum

  def __exit__(self, *exc):
    for s, handler in self._previous.items():
      signal.signal(s, handler)


def _fetch(pending: list[tuple[int, dict]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """One device-to-host transfer for all metrics accumulated since the last fetch."""
  steps = np.array([s for s, _ in pending])
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *[m for _, m in pending])
  return steps, jax.device_get(stacked)


def run(experiment: Experiment, config, workdir: str, start_time: float | None = None) -> dict:
  """Trains `experiment` to `num_steps` in `workdir` (resuming if it holds checkpoints)."""
  start_time = time.time() if start_time is None else start_time
  os.makedirs(workdir, exist_ok=True)
  exp = experiment
  checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), exp.identity,
                              keep=config.keep_checkpoints)
  replicated = NamedSharding(exp.mesh, P())
  resume_step = checkpointer.latest_step()
  if resume_step is not None:
    checkpointer.check_identity(resume_step)
    state = checkpointer.restore(resume_step, abstract_like(exp.init_state, replicated))
  else:
    state = jax.jit(exp.init_state, out_shardings=replicated)()
  step = resume_step or 0

  t0 = time.perf_counter()
  train_step = exp.train_step.lower(state, exp.feed(step)).compile()
  compile_time = time.perf_counter() - t0

  log = MetricsLog(workdir, step)
  last_saved = step
  log_every = max(1, config.log_every_steps)

  def evaluate(state, step):
    metrics = exp.evaluate(state)
    log.write(step, "eval", metrics)
    if exp.after_eval is not None:
      exp.after_eval(state, step, workdir)
    return metrics

  def flush(pending):
    if not pending:
      return {}
    steps, metrics = _fetch(pending)
    bad = ~np.isfinite(metrics["loss"])
    if bad.any():
      raise NonFiniteLossError(
          f"the loss became {metrics['loss'][bad][0]} at step {steps[bad][0]}; training stopped. "
          f"The last good checkpoint (step {last_saved}) is kept in {checkpointer.directory}. "
          f"Fix: lower --config.optimizer.learning_rate or clip gradients "
          f"(--config.optimizer.grad_clip_norm=1.0), then rerun the same command to resume.")
    means = {k: float(np.mean(v)) for k, v in metrics.items()}
    log.write(int(steps[-1]) + 1, "train", means)
    pending.clear()
    return means

  from tqdm import tqdm
  progress = tqdm(total=exp.num_steps, initial=step, unit="step", dynamic_ncols=True,
                  mininterval=1.0, disable=config.get("quiet", False))
  pending: list[tuple[int, dict]] = []
  train_start = time.perf_counter()
  start_step = step
  try:
    with _StopSignals() as stop:
      while step < exp.num_steps:
        state, metrics = train_step(state, exp.feed(step))
        pending.append((step, metrics))
        step += 1
        if step % log_every == 0 or step == exp.num_steps:
          progress.set_postfix({k: f"{v:.4g}" for k, v in flush(pending).items()}, refresh=False)
          progress.update(step - progress.n)
        if config.eval_every_steps and step % config.eval_every_steps == 0 and step < exp.num_steps:
          flush(pending)
          evaluate(state, step)
        if config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0:
          flush(pending)
          checkpointer.save(step, state, exp.meta)
          last_saved = step
        if stop.received is not None:
          flush(pending)
          if last_saved != step:
            checkpointer.save(step, state, exp.meta, wait=True)
          checkpointer.wait()
          name = signal.Signals(stop.received).name
          raise TrainingInterrupted(
              f"{name} received: stopped at step {step} and saved a checkpoint in "
              f"{checkpointer.directory}. Run the same command again to resume.",
              exit_code=128 + stop.received)
    flush(pending)
    train_time = time.perf_counter() - train_start
    final = evaluate(state, step)
    if exp.final_extras is not None:
      final.update(exp.final_extras(state, train_time))
    if last_saved != step:
      checkpointer.save(step, state, exp.meta)
    checkpointer.wait()
  finally:
    progress.close()
    log.close()
    log.plot(os.path.join(workdir, "learning_curves.png"))

  steps_run = step - start_step
  summary = {
      "config": config.to_dict(),
      "final": final,
      "steps": step,
      "resumed_from_step": resume_step,
      "wall_time_s": time.time() - start_time,
      "compile_time_s": compile_time,
      "train_time_s": train_time,
      "step_time_ms": 1e3 * train_time / steps_run if steps_run else math.nan,
      "devices": f"{exp.mesh.size} x {jax.devices()[0].device_kind}",
  }
  with open(os.path.join(workdir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
  return summary
