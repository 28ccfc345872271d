"""What a task declares to the loop: where its state lives and which metrics must stay finite."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from dljax import loop, parallel
from dljax.errors import DljaxError, NonFiniteLossError
from dljax.experiment import Experiment, Hooks, LoopOptions
from dljax.steps import TrainStep, make_train_step

OPTIONS = LoopOptions(
  log_every_steps=1,
  eval_every_steps=0,
  checkpoint_every_steps=2,
  keep_checkpoints=2,
  quiet=True,
  watchdog_timeout_s=0.0,
  config={},
)


def tiny_experiment(num_steps: int, state_sharding=None, **fields) -> Experiment:
  """w <- w + 1 on a vector of 4; `noise` is NaN from step 1 on, `loss` stays finite."""
  mesh = parallel.make_data_mesh(2)

  @jax.jit
  def train_step(state, feed):
    noise = jnp.where(state["step"] >= 1, jnp.nan, 0.0)
    return {"w": state["w"] + 1, "step": state["step"] + 1}, {
      "loss": state["w"].sum(),
      "noise": noise,
    }

  def evaluate(state):
    return {"w": float(state["w"].sum()), "split": float(state["w"].sharding.spec == P("data"))}

  fields.setdefault("train_step", TrainStep(train_step, state_sharding=state_sharding))
  fields.setdefault("identity", {})
  return Experiment(
    init_state=lambda: {"w": jnp.zeros(4), "step": jnp.int32(0)},
    feed=lambda step: None,
    evaluate=evaluate,
    num_steps=num_steps,
    mesh=mesh,
    **fields,
  )


def test_the_state_lives_where_the_task_says_also_after_a_resume(tmp_path):
  mesh = parallel.make_data_mesh(2)
  split = {"w": NamedSharding(mesh, P("data")), "step": NamedSharding(mesh, P())}
  with jax.set_mesh(mesh):
    first = loop.run(
      tiny_experiment(2, state_sharding=split, finite_metrics=("loss",)), OPTIONS, str(tmp_path)
    )
    resumed = loop.run(
      tiny_experiment(4, state_sharding=split, finite_metrics=("loss",)), OPTIONS, str(tmp_path)
    )
    replicated = loop.run(
      tiny_experiment(2, finite_metrics=("loss",)), OPTIONS, str(tmp_path / "r")
    )
  assert first["final"] == {"w": 8.0, "split": 1.0}
  assert resumed["resumed_from_step"] == 2 and resumed["final"] == {"w": 16.0, "split": 1.0}
  assert replicated["final"]["split"] == 0.0


def test_the_nan_guard_checks_the_metrics_the_task_names(tmp_path):
  with jax.set_mesh(parallel.make_data_mesh(2)):
    assert loop.run(tiny_experiment(2, finite_metrics=("loss",)), OPTIONS, str(tmp_path / "a"))
    with pytest.raises(NonFiniteLossError, match="the noise became NaN or inf at step 1"):
      loop.run(tiny_experiment(2), OPTIONS, str(tmp_path / "b"))
    with pytest.raises(ValueError, match=r"names \['los'\], which the train step does not return"):
      loop.run(tiny_experiment(2, finite_metrics=("los",)), OPTIONS, str(tmp_path / "c"))


@pytest.mark.parametrize(
  "bad, message",
  [
    ({"watchdog_timeout_s": -1.0}, "watchdog_timeout_s=-1.0 must be a number of seconds >= 0"),
    ({"watchdog_timeout_s": float("nan")}, "watchdog_timeout_s=nan must be"),
    ({"keep_checkpoints": 0}, "keep_checkpoints=0 is invalid: it must be at least 1"),
    ({"log_every_steps": 0}, "log_every_steps=0 is invalid: it must be at least 1"),
    (
      {"checkpoint_every_steps": -10},
      r"checkpoint_every_steps=-10 is invalid: it must be at least 0",
    ),
  ],
)
def test_bad_loop_options_are_refused_in_one_line(bad, message):
  with pytest.raises(DljaxError, match=message):
    dataclasses.replace(OPTIONS, **bad)


def test_the_warm_up_gets_the_abstract_state_ends_before_evaluating_and_its_failure_is_raised(
  tmp_path,
):
  mesh = parallel.make_data_mesh(2)
  split = {"w": NamedSharding(mesh, P("data")), "step": NamedSharding(mesh, P())}
  seen = []

  def warm_up(abstract_state):
    assert jax.sharding.get_abstract_mesh() == mesh.abstract_mesh  # the loop's mesh context
    seen.append(abstract_state)

  def evaluate(state):
    assert len(seen) == 1  # the warm-up has ended
    return {"w": float(state["w"].sum())}

  def failing(abstract_state):
    raise RuntimeError("the warm-up failed")

  with jax.set_mesh(mesh):
    summary = loop.run(
      dataclasses.replace(
        tiny_experiment(
          2, state_sharding=split, finite_metrics=("loss",), hooks=Hooks(warm_up=warm_up)
        ),
        evaluate=evaluate,
      ),
      OPTIONS,
      str(tmp_path / "a"),
    )
    with pytest.raises(RuntimeError, match="the warm-up failed"):
      loop.run(
        tiny_experiment(2, finite_metrics=("loss",), hooks=Hooks(warm_up=failing)),
        OPTIONS,
        str(tmp_path / "b"),
      )
  assert summary["final"] == {"w": 8.0}
  assert seen[0]["w"].shape == (4,) and seen[0]["w"].sharding == split["w"]


def test_the_loop_reads_steps_per_call_and_the_state_sharding_from_the_step():
  mesh = parallel.make_data_mesh(2)
  split = NamedSharding(mesh, P("data"))

  def loss(params, state, batch, rng, train):
    return jnp.sum(params**2), ({}, None)

  step = make_train_step(loss, steps_per_call=4, state_sharding=split)
  assert (step.steps_per_call, step.state_sharding) == (4, split)
  experiment = tiny_experiment(8, state_sharding=split)
  experiment = dataclasses.replace(experiment, train_step=step)
  assert (experiment.steps_per_call, experiment.state_sharding) == (4, split)
  with pytest.raises(TypeError, match="must be a dljax.steps.TrainStep"):
    dataclasses.replace(experiment, train_step=step.fn)


def test_a_host_driven_step_is_declared_and_called_every_step_not_compiled_ahead(tmp_path):
  calls = []
  jitted = tiny_experiment(4).train_step.fn

  def host_step(state, feed):
    calls.append(int(state["step"]))  # host work between jitted calls
    return jitted(state, feed)

  host = TrainStep(host_step)
  with jax.set_mesh(parallel.make_data_mesh(2)):
    summary = loop.run(
      tiny_experiment(4, finite_metrics=("loss",), train_step=host, host_driven=True),
      OPTIONS,
      str(tmp_path / "host"),
    )
    with pytest.raises(TypeError, match="declare it with Experiment.host_driven=True"):
      loop.run(tiny_experiment(4, train_step=host), OPTIONS, str(tmp_path / "undeclared"))
  assert calls == [0, 1, 2, 3]
  assert summary["final"] == {"w": 16.0, "split": 0.0}


def test_the_task_registry_adds_the_tasks_name_to_the_checkpoint_identity(monkeypatch):
  import sys
  import types

  from dljax import tasks
  from dljax.config import base_config

  module = types.ModuleType("tiny_task")
  module.build_experiment = lambda config, mesh: tiny_experiment(2, identity={"model": "w"})
  monkeypatch.setitem(sys.modules, "tiny_task", module)
  monkeypatch.setitem(tasks.TASKS, "tiny", "tiny_task")
  config = base_config()
  config.task = "tiny"
  mesh = parallel.make_data_mesh(2)
  assert tasks.build_experiment(config, mesh).identity == {"task": "tiny", "model": "w"}
  module.build_experiment = lambda config, mesh: tiny_experiment(2, identity={"task": "other"})
  with pytest.raises(ValueError, match="put 'task' in its Experiment.identity"):
    tasks.build_experiment(config, mesh)


def test_on_a_multi_device_cpu_mesh_the_loop_keeps_one_step_in_flight(tmp_path, monkeypatch):
  # XLA:CPU deadlocks when several steps' all-reduces are queued (parallel.needs_bounded_dispatch):
  # after dispatching step k the loop must wait for step k-1, every step, not only at log steps.
  waited = []
  block = jax.block_until_ready

  def recording_block(x):
    if isinstance(x, dict) and "loss" in x:  # a step's metrics: loss = 4 * its step index
      waited.append(int(x["loss"]) // 4)
    return block(x)

  monkeypatch.setattr(jax, "block_until_ready", recording_block)
  options = dataclasses.replace(OPTIONS, log_every_steps=100, checkpoint_every_steps=0)
  with jax.set_mesh(parallel.make_data_mesh(2)):
    loop.run(tiny_experiment(6, finite_metrics=("loss",)), options, str(tmp_path))
  assert waited == [0, 1, 2, 3, 4]
  assert not parallel.needs_bounded_dispatch(parallel.make_data_mesh(1))
