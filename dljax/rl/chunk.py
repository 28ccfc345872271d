"""The train step on the JAX envs: a jitted *chunk* of `chunk_updates` updates of every seed.

Each update is a rollout (`dljax.rl.rollout`) then the agent's learning phase; the chunk scans
`chunk_updates` of them and vmaps that over `num_seeds` seeds, with the seed axis split over the
data mesh so that every CPU core (of every process in a job of several) trains its share of the
seeds and holds only their state.
"""

import jax
from jax.sharding import NamedSharding

from dljax import parallel
from dljax.rl.agent import Agent, Setup
from dljax.rl.rollout import rollout
from dljax.rl.runner import Runner, summarize, update_keys
from dljax.steps import TrainStep


def chunk_train_step(agent: Agent, s: Setup, seeds: NamedSharding):
  """The loop's jitted `TrainStep` `(runners, feed)`; `feed` is None (the runners hold it all).
  `seeds`: where the runners live (`seed_sharding`), which they keep."""

  def one_update(runner: Runner, _):
    rollout_key, update_key = update_keys(runner)
    runner, trajectory = rollout(agent, s, runner, rollout_key)
    agent_state, metrics = agent.update(runner.agent, trajectory, update_key)
    return runner.replace(agent=agent_state, updates=runner.updates + 1), metrics

  def chunk(runner: Runner):
    return jax.lax.scan(one_update, runner, length=s.chunk_updates)

  def train_step(runners: Runner, feed):
    del feed
    runners, metrics = jax.vmap(chunk)(runners)
    return runners, summarize(runners, metrics)

  # Each device keeps its seeds' runners; the metrics (means, min and max over seeds) are
  # replicated, for every process to fetch.
  jitted = jax.jit(
    train_step, donate_argnums=0, out_shardings=(seeds, parallel.replicated(seeds.mesh))
  )
  return TrainStep(jitted, state_sharding=seeds)


def seed_sharding(s: Setup, mesh) -> NamedSharding:
  """Where the runners (stacked over seeds) live: the seeds split over the data mesh, every
  device (of every process) training its share, or replicated if they do not split evenly."""
  return parallel.batch_sharding(mesh, s.num_seeds)
