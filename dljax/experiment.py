"""What the loop is given: a task's `Experiment` and the `LoopOptions` it runs it with.

A task builds an `Experiment` (dljax.tasks); `dljax.tasks.loop_options` builds the options from
a config; `dljax.loop.run` takes both.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

from dljax.config_checks import check_ranges
from dljax.errors import DljaxError
from dljax.steps import TrainStep


@dataclasses.dataclass(frozen=True)
class Hooks:
  """What a task may add to the loop's run; each is optional (None: nothing).

  after_eval: `(state, step, workdir) -> None` after each evaluation, e.g. writing text samples.
  final_extras: `(state, steps_run, seconds) -> dict` merged into `final`; `steps_run`: the steps
    this invocation ran (0 in a rerun of a finished run), in `seconds` of training (compilation
    and evaluation excluded), e.g. for a rate of this invocation's steps.
  warm_up: `abstract_state -> None` run on a thread of its own while the first train steps run
    (e.g. compiling the evaluation ahead); it ends before the first evaluation.
  """

  after_eval: Callable | None = None
  final_extras: Callable | None = None
  warm_up: Callable[[Any], None] | None = None


@dataclasses.dataclass
class Experiment:
  """What a task hands the loop.

  init_state: () -> state, traceable (the loop jits it, or only traces it when resuming).
  train_step: the `dljax.steps.TrainStep` (`make_train_step`'s), `(state, feed) -> (state,
    metrics)` with `state` donated; metrics are scalars. It carries `steps_per_call` (`num_steps`
    and the log/eval/checkpoint intervals must be multiples of it) and `state_sharding`.
  feed: host function `step -> feed` for the train step (device arrays; may be None).
  evaluate: `state -> {name: float}`, run every `eval_every_steps` and at the end; its result at
    the end is `summary.json`'s `final`.
  num_steps: the steps the run trains to.
  identity: what makes checkpoints of this experiment compatible (model, data...);
    `dljax.tasks.build_experiment` adds the config's `task`.
  mesh: the data mesh the run is placed on.

  Optional:
  meta: extra JSON saved with every checkpoint (e.g. a vocabulary).
  finite_metrics: the train metrics that must stay finite (the run stops at the first NaN or inf
    in one of them); None: all of them.
  host_driven: the step is a plain function that drives the host between jitted calls (e.g.
    stepping a gymnasium env): the loop does not compile it ahead of time, and its first call,
    which compiles what it runs, is not watched by the watchdog.
  hooks: the task's optional additions to the run (`Hooks`).
  """

  init_state: Callable[[], Any]
  train_step: TrainStep
  feed: Callable[[int], Any]
  evaluate: Callable[[Any], dict]
  num_steps: int
  identity: dict
  mesh: jax.sharding.Mesh
  meta: dict = dataclasses.field(default_factory=dict)
  finite_metrics: tuple[str, ...] | None = None
  host_driven: bool = False
  hooks: Hooks = Hooks()

  def __post_init__(self):
    if not isinstance(self.train_step, TrainStep):
      raise TypeError(
        f"Experiment.train_step must be a dljax.steps.TrainStep (make_train_step returns one; "
        f"wrap another step function as TrainStep(fn, ...)), got {type(self.train_step).__name__}"
      )

  @property
  def steps_per_call(self) -> int:
    return self.train_step.steps_per_call

  @property
  def state_sharding(self):
    return self.train_step.state_sharding


@dataclasses.dataclass(frozen=True)
class LoopOptions:
  """How the loop runs an experiment; `dljax.tasks.loop_options` builds it from a config (whose
  fields of the same names, in `dljax.config.base_config`, document them)."""

  log_every_steps: int  # fetch, check and log the train metrics this often
  eval_every_steps: int  # 0: evaluate only at the end
  checkpoint_every_steps: int  # 0: only at the end
  keep_checkpoints: int  # the newest k checkpoints are kept
  quiet: bool  # no progress bar
  watchdog_timeout_s: float  # end the run when no train step completes this long; 0: never
  config: dict  # recorded in summary.json

  def __post_init__(self):
    names = ("log_every_steps", "eval_every_steps", "checkpoint_every_steps", "keep_checkpoints")
    check_ranges({name: getattr(self, name) for name in names})
    if not self.watchdog_timeout_s >= 0:  # also catches NaN
      raise DljaxError(
        f"watchdog_timeout_s={self.watchdog_timeout_s} must be a number of seconds >= 0 "
        f"(0: no watchdog)"
      )
