"""What the RL agents (PPO, DQN) share: config, rollouts, seeds, evaluation and the Experiment.

An agent is a handful of pure functions of one seed's state (`Agent`). From them this module
builds the loop's train step, a jitted *chunk* of `chunk_updates` updates (rollout, then learning)
vmapped over `num_seeds` seeds, with the seed axis split over the data mesh so that every CPU
core trains its share of the seeds. The chunk's state (`Runner`: agents, env states, keys,
replay buffers) is the pytree the loop checkpoints, so a resumed run is bitwise the uninterrupted
one. With `env=gym:NAME` the same agent functions run in a host loop over a gymnasium vector env.

XLA:CPU pays a few microseconds per operation, and a rollout step is tiny, so all the randomness
of a rollout (policy noise, step keys, candidate reset states) is drawn in a few batched
operations before the rollout's `scan` instead of splitting keys in every step.
"""

import dataclasses
import json
import math
import os
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from dljax import parallel
from dljax.config import base_config
from dljax.errors import DljaxError
from dljax.loop import Experiment
from dljax.rl import envs
from dljax.rl.envs.registry import GYM_PREFIX


def rl_config() -> ml_collections.ConfigDict:
  """Defaults shared by the RL configs; the loop's `num_steps` counts chunks (0: derived)."""
  c = base_config()
  c.env = "CartPole-v1"  # a dljax.rl.envs name, or gym:<gymnasium id> (host rollouts, one seed)
  c.num_seeds = 8  # independent runs trained together (vmapped)
  c.num_envs = 4  # parallel envs per seed
  c.rollout_steps = 128  # env steps per env between two learning phases
  c.total_env_steps = 500_000  # per seed; rounded down to whole updates, then up to whole chunks
  c.chunk_updates = 50  # updates per jitted call of the loop
  c.eval_episodes = 10  # per seed, greedy / mean action
  # One XLA:CPU device. 2 (the seeds split over them) work and run 1.5-1.8x faster on an idle
  # 2-core machine (no faster on a busy one), but round differently from one: the configs'
  # figures are one device's (cartpole_dqn on 2 devices: mean 469.3, one seed 254, not 500).
  c.cpu_devices = 1
  c.log_every_steps = 1
  c.checkpoint_every_steps = 10
  c.model = ml_collections.ConfigDict({"hidden": (64, 64), "activation": "tanh"})
  c.optimizer.name = "adam"
  c.optimizer.schedule = "linear"
  c.optimizer.grad_clip_norm = 0.5
  return c


@dataclasses.dataclass(frozen=True)
class Agent:
  """An RL agent as pure functions of one seed's state; the drivers vmap, scan and jit them.

  init: key -> agent state (train state, target network, replay buffer...).
  draw_noise: (key, (T, N)) -> the policy's randomness for a T-step rollout of N envs.
  act: (agent state, obs [N, ...], noise [N, ...]) -> (actions, extras); the extras (log-probs,
    values) go into the trajectory.
  update: (agent state, trajectory, key) -> (agent state, metrics). The trajectory holds
    [T, N, ...] arrays `obs`, `action`, `reward`, `terminated`, `truncated`, `next_obs` (the
    observation after the step, before an auto-reset: what truncated episodes bootstrap from) and
    the extras.
  greedy: (agent state, obs [N, ...]) -> actions; the evaluation policy.
  identity: what makes checkpoints compatible, beyond the env and sizes.
  """

  init: Callable
  draw_noise: Callable
  act: Callable
  update: Callable
  greedy: Callable
  identity: dict


@flax.struct.dataclass
class Runner:
  """One seed's training state between updates (stacked over seeds, it is the loop's state)."""

  agent: Any
  env_state: Any  # None with a gymnasium env, whose state lives on the host
  obs: Any  # likewise
  episode_return: jax.Array  # [N] running return of each env's current episode
  last_return: jax.Array  # [N] return of each env's last finished episode
  rng: jax.Array
  updates: jax.Array


@dataclasses.dataclass(frozen=True)
class Setup:
  """The sizes every driver needs, derived once from the config."""

  env: Any
  env_params: Any
  is_gym: bool
  num_seeds: int
  num_envs: int
  rollout_steps: int
  chunk_updates: int
  num_chunks: int

  @property
  def num_updates(self) -> int:
    return self.chunk_updates * self.num_chunks

  @property
  def steps_per_update(self) -> int:
    return self.num_envs * self.rollout_steps


def setup(config) -> Setup:
  """The environment and run sizes; clear errors for bad names and sizes."""
  for key in ("num_seeds", "num_envs", "rollout_steps", "chunk_updates", "eval_episodes"):
    if config[key] < 1:
      raise DljaxError(f"{key}={config[key]} must be at least 1")
  is_gym = config.env.startswith(GYM_PREFIX)
  if is_gym and config.num_seeds != 1:
    raise DljaxError(
      f"{config.env} is stepped on the host, one seed at a time; add --config.num_seeds=1"
    )
  env, env_params = (
    envs.make(config.env, num_envs=config.num_envs) if is_gym else envs.make(config.env)
  )
  updates = max(1, config.total_env_steps // (config.num_envs * config.rollout_steps))
  num_chunks = config.num_steps or math.ceil(updates / config.chunk_updates)
  return Setup(
    env,
    env_params,
    is_gym,
    config.num_seeds,
    config.num_envs,
    config.rollout_steps,
    config.chunk_updates,
    num_chunks,
  )


def _where(done, fresh, current):
  """`fresh` where `done` else `current`, leaf by leaf, `done` broadcast over trailing axes."""
  return jax.tree.map(
    lambda a, b: jnp.where(done.reshape(done.shape + (1,) * (a.ndim - done.ndim)), a, b),
    fresh,
    current,
  )


def _track_returns(runner_returns, reward, done):
  episode_return, last_return = runner_returns
  episode_return = episode_return + reward
  return jnp.where(done, 0.0, episode_return), jnp.where(done, episode_return, last_return)


def _rollout(agent: Agent, s: Setup, runner: Runner, key):
  """`rollout_steps` steps of `num_envs` auto-resetting envs under the agent's policy."""
  shape = (s.rollout_steps, s.num_envs)
  reset_key, step_key, noise_key = jax.random.split(key, 3)
  reset_all = jax.vmap(jax.vmap(s.env.reset, (0, None)), (0, None))
  reset_obs, reset_state = reset_all(jax.random.split(reset_key, shape), s.env_params)
  env_step = jax.vmap(s.env.step, (0, 0, 0, None))

  def one_step(carry, xs):
    env_state, obs, returns = carry
    fresh_obs, fresh_state, keys, noise = xs
    action, extras = agent.act(runner.agent, obs, noise)
    next_obs, env_state, reward, terminated, truncated = env_step(
      keys, env_state, action, s.env_params
    )
    done = terminated | truncated
    carry = (
      _where(done, fresh_state, env_state),
      _where(done, fresh_obs, next_obs),
      _track_returns(returns, reward, done),
    )
    return carry, dict(
      obs=obs,
      action=action,
      reward=reward,
      terminated=terminated,
      truncated=truncated,
      next_obs=next_obs,
      **extras,
    )

  carry = (runner.env_state, runner.obs, (runner.episode_return, runner.last_return))
  xs = (
    reset_obs,
    reset_state,
    jax.random.split(step_key, shape),
    agent.draw_noise(noise_key, shape),
  )
  (env_state, obs, (episode_return, last_return)), trajectory = jax.lax.scan(one_step, carry, xs)
  runner = runner.replace(
    env_state=env_state, obs=obs, episode_return=episode_return, last_return=last_return
  )
  return runner, trajectory


def _update_keys(runner: Runner):
  """This update's rollout and learning keys, a function of the update count (resume-safe)."""
  rollout_key, update_key = jax.random.split(jax.random.fold_in(runner.rng, runner.updates))
  return rollout_key, update_key


def _summarize(runners: Runner, metrics: dict) -> dict:
  """Scalars for the loop: learning metrics averaged, returns across seeds (mean, min, max)."""
  seed_returns = runners.last_return.mean(axis=-1)
  return {
    **{k: v.mean() for k, v in metrics.items()},
    "return_mean": seed_returns.mean(),
    "return_min": seed_returns.min(),
    "return_max": seed_returns.max(),
  }


def _jax_train_step(agent: Agent, s: Setup, mesh):
  """The jitted chunk: `chunk_updates` updates of every seed, seeds split over the mesh."""

  def one_update(runner, _):
    rollout_key, update_key = _update_keys(runner)
    runner, trajectory = _rollout(agent, s, runner, rollout_key)
    agent_state, metrics = agent.update(runner.agent, trajectory, update_key)
    return runner.replace(agent=agent_state, updates=runner.updates + 1), metrics

  def chunk(runner):
    return jax.lax.scan(one_update, runner, length=s.chunk_updates)

  def train_step(runners, feed):
    del feed
    if s.num_seeds % mesh.size == 0:
      runners = jax.tree.map(parallel.split_batch, runners)
    runners, metrics = jax.vmap(chunk)(runners)
    return runners, _summarize(runners, metrics)

  # The state goes back replicated, the sharding the loop initialises and restores it with.
  return jax.jit(train_step, donate_argnums=0, out_shardings=NamedSharding(mesh, P()))


def _host_episode_seed(seed: int, chunk: int) -> int:
  """The gymnasium reset seed of chunk `chunk`: distinct per chunk, a function of the run seed."""
  return int(np.random.SeedSequence([seed, chunk]).generate_state(1)[0])


def _host_train_step(agent: Agent, s: Setup, seed: int):
  """The gymnasium chunk: a host rollout loop calling jitted, seed-vmapped agent functions.

  A gymnasium env's state cannot be checkpointed in general, so every chunk starts new episodes,
  reset with a seed derived from the chunk's index, and cuts the episodes still running at its
  end as truncated (they bootstrap from their last observation, as at a time limit). The host
  envs are then a function of the checkpointed state: a resumed run is the uninterrupted one.
  """
  act = jax.jit(jax.vmap(agent.act))
  update = jax.jit(jax.vmap(agent.update), donate_argnums=0)
  draw_noise = jax.jit(jax.vmap(agent.draw_noise, (0, None)), static_argnums=1)
  update_keys = jax.jit(jax.vmap(_update_keys))

  def train_step(runner, feed):
    del feed
    chunk = int(runner.updates[0]) // s.chunk_updates
    obs = s.env.reset(seed=_host_episode_seed(seed, chunk))[0]
    returns = (np.zeros(s.num_envs, np.float32), jax.device_get(runner.last_return[0]))
    for update_index in range(s.chunk_updates):
      rollout_key, update_key = update_keys(runner)
      noise = jax.device_get(draw_noise(rollout_key, (s.rollout_steps, s.num_envs)))
      steps = []
      for t in range(s.rollout_steps):
        action, extras = jax.device_get(
          act(runner.agent, obs[None], jax.tree.map(lambda x, t=t: x[:, t], noise))
        )
        # The JAX envs clip out-of-space actions (a Gaussian policy's) themselves; gymnasium's
        # bridge refuses them.
        next_obs, reward, terminated, truncated, info = s.env.step(
          np.asarray(s.env.action_space.clip(action[0]))
        )
        returns = _track_returns(returns, reward, terminated | truncated)
        if update_index == s.chunk_updates - 1 and t == s.rollout_steps - 1:
          truncated = np.ones_like(truncated)  # the chunk's end cuts every running episode
        steps.append(
          dict(
            obs=obs,
            action=action[0],
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            next_obs=info["final_observation"],
            **jax.tree.map(lambda x: x[0], extras),
          )
        )
        obs = next_obs
      trajectory = jax.tree.map(lambda *xs: np.stack(xs)[None], *steps)
      agent_state, metrics = update(runner.agent, trajectory, update_key)
      runner = runner.replace(agent=agent_state, updates=runner.updates + 1)
    runner = runner.replace(
      episode_return=jnp.asarray(returns[0])[None], last_return=jnp.asarray(returns[1])[None]
    )
    return runner, _summarize(runner, metrics)

  return train_step


def _jax_evaluate(agent: Agent, s: Setup, num_episodes: int):
  """Per-seed mean return of `num_episodes` episodes under the greedy policy (jitted)."""
  env_step = jax.vmap(s.env.step, (0, 0, 0, None))
  max_steps = int(s.env_params.max_episode_steps)

  def seed_return(agent_state, key):
    reset_key, step_key = jax.random.split(key)
    obs, env_state = jax.vmap(s.env.reset, (0, None))(
      jax.random.split(reset_key, num_episodes), s.env_params
    )

    def one_step(carry, keys):
      obs, env_state, total, running = carry
      obs, env_state, reward, terminated, truncated = env_step(
        keys, env_state, agent.greedy(agent_state, obs), s.env_params
      )
      return (obs, env_state, total + reward * running, running & ~(terminated | truncated)), None

    carry = (obs, env_state, jnp.zeros(num_episodes), jnp.ones(num_episodes, bool))
    keys = jax.random.split(step_key, (max_steps, num_episodes))
    (_, _, total, _), _ = jax.lax.scan(one_step, carry, keys)
    return total.mean()

  return jax.jit(jax.vmap(seed_return))


def _host_evaluate(agent: Agent, env_name: str, num_episodes: int, seed: int):
  """The same on a fresh gymnasium vector env: the first episode of each of its envs."""
  greedy = jax.jit(jax.vmap(agent.greedy))

  def seed_return(agent_states, keys):
    del keys  # the env's own seed makes the evaluation repeatable
    env, _ = envs.make(env_name, num_envs=num_episodes)
    obs = env.reset(seed=seed)[0]
    total, running = np.zeros(num_episodes), np.ones(num_episodes, bool)
    while running.any():
      action = env.action_space.clip(greedy(agent_states, obs[None])[0])
      obs, reward, terminated, truncated, _ = env.step(np.asarray(action))
      total += reward * running
      running &= ~(terminated | truncated)
    env.close()
    return total.mean()[None]

  return seed_return


def plot_returns(workdir: str, env_steps_per_chunk: int, title: str):
  """`returns.png`: the across-seed mean training return with its min-max band, and evaluations."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  train = np.array(
    [
      (r["step"], r["return_mean"], r["return_min"], r["return_max"])
      for r in records
      if r["split"] == "train" and "return_mean" in r
    ]
  )
  evals = np.array(
    [
      (r["step"], r["mean_return"], r["min_seed_return"], r["max_seed_return"])
      for r in records
      if r["split"] == "eval" and "mean_return" in r
    ]
  )
  fig, ax = plt.subplots(figsize=(6, 4))
  for points, label in ((train, "training (last episodes)"), (evals, "evaluation")):
    if len(points):
      steps = points[:, 0] * env_steps_per_chunk
      ax.plot(steps, points[:, 1], marker="o" if len(points) < 20 else None, label=label)
      ax.fill_between(steps, points[:, 2], points[:, 3], alpha=0.25)
  ax.set(
    title=f"{title}: mean over seeds, min-max band", xlabel="env steps per seed", ylabel="return"
  )
  ax.legend()
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, "returns.png"), dpi=80)
  plt.close(fig)


def build_experiment(config, mesh, task: str, make_agent: Callable[[Any, Setup], Agent]):
  """The loop's `Experiment` for `make_agent(config, setup)` on the config's environment."""
  s = setup(config)
  agent = make_agent(config, s)
  root, eval_root = jax.random.split(jax.random.PRNGKey(config.seed))

  def init_runner(agent_state, reset_key, rng):
    zeros = jnp.zeros(s.num_envs)
    if s.is_gym:
      obs = env_state = None
    else:
      obs, env_state = jax.vmap(s.env.reset, (0, None))(
        jax.random.split(reset_key, s.num_envs), s.env_params
      )
    return Runner(agent_state, env_state, obs, zeros, zeros, rng, jnp.int32(0))

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
    train_step = _host_train_step(agent, s, config.seed)
    seed_returns = _host_evaluate(agent, config.env, config.eval_episodes, config.seed + 1)
  else:
    train_step = _jax_train_step(agent, s, mesh)
    seed_returns = _jax_evaluate(agent, s, config.eval_episodes)
  eval_keys = jax.random.split(eval_root, s.num_seeds)

  def evaluate(runners):
    returns = np.asarray(seed_returns(runners.agent, eval_keys))
    return {
      "mean_return": float(returns.mean()),
      "min_seed_return": float(returns.min()),
      "max_seed_return": float(returns.max()),
    }

  first_chunk = []  # of this invocation (a resumed run starts later), for its throughput

  def feed(step):
    if not first_chunk:
      first_chunk.append(step)

  def final_extras(runners, seconds):
    env_steps = int(runners.updates[0]) * s.steps_per_update
    # A rerun of a finished run steps no chunk, and a host-stepped env is then never fed.
    first = first_chunk[0] if first_chunk else s.num_chunks
    done_here = env_steps - first * s.chunk_updates * s.steps_per_update
    return {
      "env_steps": env_steps,
      "env_steps_per_s": s.num_seeds * done_here / seconds if done_here else 0.0,
    }

  env_steps_per_chunk = s.chunk_updates * s.steps_per_update
  return Experiment(
    init_state=init_runners,
    train_step=train_step,
    feed=feed,
    evaluate=evaluate,
    num_steps=s.num_chunks,
    identity={
      "task": task,
      "env": config.env,
      "num_seeds": s.num_seeds,
      "num_envs": s.num_envs,
      "rollout_steps": s.rollout_steps,
      **agent.identity,
    },
    mesh=mesh,
    after_eval=lambda state, step, workdir: plot_returns(
      workdir, env_steps_per_chunk, f"{task} on {config.env}"
    ),
    final_extras=final_extras,
  )
