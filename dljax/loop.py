"""The one loop driver every dljax experiment runs through.

A task describes its experiment as an `Experiment` (dljax.experiment: how to initialise and
place the state, the jitted train step, what to feed it, how to evaluate); `run` does everything
else, as its `LoopOptions` say: AOT compilation timed on its own (what the start and the end of a
run can do on idle cores is dljax.overlap's), resume from the newest checkpoint, metrics
accumulated on device and fetched every `log_every_steps`, progress bar, evaluation, periodic
checkpoints, NaN/inf detection, clean shutdown on SIGINT/SIGTERM
(dljax.stop_signals), a watchdog that ends a stalled run (dljax.watchdog), `metrics.jsonl`,
TensorBoard, a PNG of the curves and `summary.json`.
"""

import json
import math
import os
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np

from dljax import distributed, metrics_log, overlap, parallel
from dljax.checkpoint import Checkpointer
from dljax.errors import DljaxError, NonFiniteLossError, TrainingInterrupted
from dljax.experiment import Experiment, LoopOptions
from dljax.stop_signals import StopSignals
from dljax.watchdog import Watchdog


def _fetch(pending: list[tuple[int, dict]], steps_per_call: int):
  """One device-to-host transfer for all metrics accumulated since the last fetch.

  Returns the step index of every metric value and the values, flattened over calls and steps.
  """
  steps = (np.array([s for s, _ in pending])[:, None] + np.arange(steps_per_call)).reshape(-1)
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs).reshape(-1), *[m for _, m in pending])
  return steps, jax.device_get(stacked)


def _check_intervals(exp: Experiment, options: LoopOptions):
  k = exp.steps_per_call
  for name, value in [
    ("num_steps", exp.num_steps),
    ("log_every_steps", options.log_every_steps),
    ("eval_every_steps", options.eval_every_steps),
    ("checkpoint_every_steps", options.checkpoint_every_steps),
  ]:
    if value % k:
      raise DljaxError(
        f"{name}={value} is not a multiple of the {k} steps each train-step call runs "
        f"(steps_per_call); make it a multiple of {k} or change steps_per_call"
      )


class _Run:
  """One invocation of the loop: the state, its step, pending metrics, logs and checkpoints."""

  def __init__(self, exp: Experiment, options: LoopOptions, workdir: str):
    self.exp, self.options, self.workdir = exp, options, workdir
    _check_intervals(exp, options)
    os.makedirs(workdir, exist_ok=True)
    self.checkpointer = Checkpointer(
      os.path.join(workdir, "checkpoints"), exp.identity, keep=options.keep_checkpoints
    )
    sharding = parallel.replicated(exp.mesh) if exp.state_sharding is None else exp.state_sharding
    init_state = jax.jit(exp.init_state, out_shardings=sharding)
    self.abstract_state = jax.eval_shape(init_state)
    self.resume_step, state = self.checkpointer.restore_newest(self.abstract_state)
    self.step = self.last_saved = self.resume_step or 0
    self.state, self.train_step, self.compile_time = overlap.compile_and_init(
      exp.mesh,
      exp.train_step,
      exp.host_driven,
      init_state,
      self.abstract_state,
      exp.feed(self.step),
      state,
    )
    self.warming_up = None
    self.all_finite = overlap.all_finite  # until the warm-up has compiled it for the state
    self.eval_time = 0.0
    self.pending: list[tuple[int, dict]] = []
    self.bounded_dispatch = parallel.needs_bounded_dispatch(exp.mesh)
    self.log = metrics_log.MetricsLog(workdir, self.step)
    self.files_dir = distributed.output_dir(workdir)  # other processes write to a scratch dir

  def end_warm_up(self):
    """Waits for the warm-up (dljax.overlap.WarmUp), raising what it raised."""
    if self.warming_up is not None:
      self.all_finite = self.warming_up.finish()
      self.warming_up = None

  def non_finite(self, what: str, step: int) -> NonFiniteLossError:
    return NonFiniteLossError(
      f"the {what} became NaN or inf at step {step}; training stopped. The last good "
      f"checkpoint (step {self.last_saved}) is kept in {self.checkpointer.directory}. Fix: lower "
      f"the learning rate or clip the gradients (the config's optimizer settings), then rerun "
      f"the same command to resume from that checkpoint."
    )

  def flush(self) -> dict[str, float]:
    """Fetches pending metrics, stops on non-finite ones, logs their means."""
    if not self.pending:
      return {}
    steps, metrics = _fetch(self.pending, self.exp.steps_per_call)
    self.pending.clear()
    checked = self.exp.finite_metrics
    if checked is not None and not set(checked) <= set(metrics):
      raise ValueError(
        f"Experiment.finite_metrics names {sorted(set(checked) - set(metrics))}, which the "
        f"train step does not return (it returns {sorted(metrics)})"
      )
    for name, values in metrics.items():
      bad = ~np.isfinite(values)
      if (checked is None or name in checked) and bad.any():
        raise self.non_finite(name, int(steps[bad][0]))
    means = {k: float(np.mean(v)) for k, v in metrics.items()}
    self.log.write(int(steps[-1]) + 1, "train", means)
    return means

  def evaluate(self) -> dict[str, float]:
    self.end_warm_up()
    self.flush()
    t0 = time.perf_counter()
    metrics = self.exp.evaluate(self.state)
    self.log.write(self.step, "eval", metrics)
    if self.exp.hooks.after_eval is not None:
      self.exp.hooks.after_eval(self.state, self.step, self.files_dir)
    self.eval_time += time.perf_counter() - t0
    return metrics

  def save(self):
    """Checkpoints the state unless already saved; never saves a non-finite state."""
    self.end_warm_up()
    self.flush()
    if self.last_saved == self.step:
      return
    if not self.all_finite(self.state):
      raise self.non_finite("parameters", self.step)
    self.checkpointer.save(self.step, self.state, self.exp.meta)
    self.last_saved = self.step

  def train(self, stop: StopSignals, watchdog: Watchdog, progress):
    exp, options = self.exp, self.options
    log_every = options.log_every_steps
    self.warming_up = overlap.WarmUp(
      exp.mesh, self.abstract_state, exp.host_driven, exp.hooks.warm_up
    )
    while self.step < exp.num_steps:
      watchdog.call_started(self.step + exp.steps_per_call)
      self.state, metrics = self.train_step(self.state, exp.feed(self.step))
      watchdog.call_returned(metrics)
      if self.bounded_dispatch and self.pending:
        jax.block_until_ready(self.pending[-1][1])  # step k-1 done; step k stays queued
      self.pending.append((self.step, metrics))
      self.step += exp.steps_per_call
      at_log_step = self.step % log_every == 0 or self.step == exp.num_steps
      if at_log_step:
        progress.set_postfix({k: f"{v:.4g}" for k, v in self.flush().items()}, refresh=False)
        progress.update(self.step - progress.n)
      if (
        options.eval_every_steps
        and self.step % options.eval_every_steps == 0
        and self.step < exp.num_steps
      ):
        self.evaluate()
      if options.checkpoint_every_steps and self.step % options.checkpoint_every_steps == 0:
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


def run(
  experiment: Experiment, options: LoopOptions, workdir: str, start_time: float | None = None
) -> dict:
  """Trains `experiment` to `num_steps` in `workdir` (resuming if it holds checkpoints)."""
  from tqdm import tqdm

  start_time = time.time() if start_time is None else start_time
  r = _Run(experiment, options, workdir)
  start_step = r.step
  progress = tqdm(
    total=experiment.num_steps,
    initial=r.step,
    unit="step",
    dynamic_ncols=True,
    mininterval=1.0,
    disable=options.quiet or not distributed.is_writer(),
  )
  watchdog = Watchdog(
    options.watchdog_timeout_s,
    r.checkpointer,
    workdir,
    r.step,
    unwatched_calls=1 if experiment.host_driven else 0,  # that call compiles what it runs
  )
  t0 = time.perf_counter()
  try:
    with StopSignals(r.checkpointer) as stop, watchdog:
      r.train(stop, watchdog, progress)
    train_time = time.perf_counter() - t0 - r.eval_time
    steps_run = r.step - start_step
    final = r.evaluate()
    if experiment.hooks.final_extras is not None:
      final.update(experiment.hooks.final_extras(r.state, steps_run, train_time))
    r.save()
    r.checkpointer.wait()
  finally:
    progress.close()
    r.log.close()
    r.log.plot(os.path.join(workdir, "learning_curves.png"))

  summary = {
    "config": options.config,
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
