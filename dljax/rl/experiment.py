"""The loop's `Experiment` for an RL agent: the seeds' initial runners, the driver for the env
(the jitted chunk on a JAX env, the host loop on a gymnasium one), evaluation and the returns plot.

The loop's steps are chunks of `chunk_updates` updates; its state is the `Runner` stacked over
seeds (`dljax.rl.runner`), so a resumed run is bitwise the uninterrupted one.
"""

import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from dljax import distributed
from dljax.experiment import Experiment, Hooks
from dljax.metrics_log import Curve, plot_records, read_records
from dljax.rl.agent import Agent, Setup, setup
from dljax.rl.chunk import chunk_train_step, seed_sharding
from dljax.rl.evaluation import host_seed_returns, jax_seed_returns, make_evaluate
from dljax.rl.gym_driver import host_train_step
from dljax.rl.runner import Runner


def returns_panel(title: str) -> dict[str, list[Curve]]:
  """`returns.png`'s panel: the across-seed mean training return with its min-max band, and the
  evaluations likewise."""
  return {
    f"{title} (seed mean, min-max)": [
      Curve("train", "return_mean", "training (last episodes)", ("return_min", "return_max")),
      Curve("eval", "mean_return", "evaluation", ("min_seed_return", "max_seed_return")),
    ]
  }


def build_experiment(config, mesh, make_agent: Callable[[Any, Setup], Agent]):
  """The loop's `Experiment` for `make_agent(config, setup)` on the config's environment."""
  s = setup(config)
  agent = make_agent(config, s)
  root, eval_root = jax.random.split(jax.random.PRNGKey(config.seed))

  def init_runner(agent_state, reset_key, rng):
    if s.is_gym:
      obs = env_state = None
    else:
      obs, env_state = jax.vmap(s.env.reset, (0, None))(
        jax.random.split(reset_key, s.num_envs), s.env_params
      )
    return Runner.start(agent_state, env_state, obs, rng, s.num_envs)

  def init_runners():
    seed_keys = jax.vmap(lambda i: jax.random.split(jax.random.fold_in(root, i), 3))(
      jnp.arange(s.num_seeds)
    )
    agent_keys, reset_keys, rngs = seed_keys[:, 0], seed_keys[:, 1], seed_keys[:, 2]
    # The agents one seed at a time (`lax.map`, not `vmap`): vmapped, the orthogonal init's QR is
    # a batched LAPACK call, which can deadlock XLA:CPU's thread pool
    # (docs/xla-cpu-qr-deadlock.md). The parameters are bitwise the vmapped ones.
    return jax.vmap(init_runner)(jax.lax.map(agent.init, agent_keys), reset_keys, rngs)

  if s.is_gym:
    train_step = host_train_step(agent, s, config.seed, seed_sharding(s, mesh))
    seed_returns = host_seed_returns(agent, config.env, config.eval_episodes, config.seed + 1)
  else:
    train_step = chunk_train_step(agent, s, seed_sharding(s, mesh))
    seed_returns = jax_seed_returns(agent, s, config.eval_episodes)

  evaluate, warm_up, last_returns = make_evaluate(
    seed_returns, jax.random.split(eval_root, s.num_seeds), on_host=s.is_gym
  )

  def plot_returns(runners, step, workdir):
    del runners, step
    plot_records(
      read_records(workdir),
      os.path.join(workdir, "returns.png"),
      returns_panel(f"{config.task} on {config.env}"),
      step_scale=s.steps_per_chunk,
      xlabel="env steps per seed",
      ylabel="return",
    )

  def final_extras(runners, chunks_run, seconds):
    extras = {
      "env_steps": int(distributed.fetch(runners.updates)[0]) * s.steps_per_update,
      "seed_returns": last_returns(),  # seed order: --config.seed's set, 0..num_seeds-1
    }
    # The env steps of all seeds in this invocation per second of its training; a rerun of a
    # finished run steps nothing and reports no rate (0.0 would read as a figure).
    if chunks_run:
      extras["env_steps_per_s"] = chunks_run * s.steps_per_chunk * s.num_seeds / seconds
    return extras

  return Experiment(
    init_state=init_runners,
    train_step=train_step,
    feed=lambda step: None,
    evaluate=evaluate,
    num_steps=s.num_chunks,
    identity={
      "env": config.env,
      "num_seeds": s.num_seeds,
      "num_envs": s.num_envs,
      "rollout_steps": s.rollout_steps,
      **agent.identity,
    },
    mesh=mesh,
    host_driven=s.is_gym,
    hooks=Hooks(after_eval=plot_returns, final_extras=final_extras, warm_up=warm_up),
  )
