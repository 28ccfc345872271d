"""RL agents: smoke runs through the real loop, bitwise resume after SIGKILL, GAE against numpy,
clear errors for bad input, and training through the gymnasium bridge."""

import json
import re
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import (
  REPO,
  assert_trees_equal,
  config_path,
  run_module,
  saved_state,
  signal_after_checkpoint,
  start_module,
  without_rate,
)


def train(config: str, workdir, *extra):
  """Runs a smoke config (~10 s); one that stalls fails the test by its timeout."""
  return run_module(
    "experiments.train",
    f"--config={config_path(config)}:smoke",
    f"--workdir={workdir}",
    "--config.quiet=True",
    *extra,
    timeout=150,
  )


# cartpole_ppo's initial state (8 seeds), computed as the loop does, on 2 CPU devices. Vmapped over
# seeds, the orthogonal init's batched QR deadlocked XLA:CPU there in nearly every fresh process
# (on 1 device in some): docs/xla-cpu-qr-deadlock.md. DQN's agents go through the same init.
INIT_ON_TWO_DEVICES = """
import jax
from dljax import parallel
from dljax.cli import load_config
from dljax.tasks import build_experiment
parallel.setup_devices(2)
mesh = parallel.make_data_mesh()
experiment = build_experiment(load_config("experiments/configs/cartpole_ppo.py"), mesh)
jax.block_until_ready(jax.jit(experiment.init_state, out_shardings=experiment.state_sharding)())
"""


# Loading the RL configs, as experiments.train does before it sets up the devices.
LOAD_RL_CONFIGS = """
import sys
from dljax.cli import load_config
for name in ("cartpole_ppo", "cartpole_dqn", "pendulum_ppo"):
  load_config(f"experiments/configs/{name}.py:smoke")
heavy = ("jax", "jaxlib", "flax", "optax", "orbax", "dljax.loop", "dljax.experiment", "dljax.rl.envs")
print(sorted(m for m in sys.modules if m.split(".")[0] in heavy or m.startswith(heavy)))
"""


def test_loading_an_rl_config_imports_no_jax():
  out = subprocess.run(
    [sys.executable, "-c", LOAD_RL_CONFIGS], cwd=REPO, capture_output=True, text=True, check=True
  )
  assert out.stdout.strip() == "[]", out.stdout


def test_seed_initialisation_does_not_deadlock_xla_cpu():
  # A fresh process: a deadlocked one can only be killed (subprocess.run kills it on timeout).
  out = subprocess.run(
    [sys.executable, "-c", INIT_ON_TWO_DEVICES],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=120,
    check=False,
  )
  assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("config", ["cartpole_ppo", "cartpole_dqn", "pendulum_ppo"])
def test_smoke_variant_trains_end_to_end(tmp_path, config):
  out = train(config, tmp_path)
  assert out.returncode == 0, out.stderr
  summary = json.loads((tmp_path / "summary.json").read_text())
  final = summary["final"]
  assert {
    "mean_return",
    "min_seed_return",
    "median_seed_return",
    "max_seed_return",
    "seed_returns",
    "env_steps",
    "env_steps_per_s",
  } == set(final)
  # Every seed's return, in seed order: what the across-seed figures summarise.
  returns = final["seed_returns"]
  assert len(returns) == summary["config"]["num_seeds"]
  assert (min(returns), max(returns)) == pytest.approx(
    (final["min_seed_return"], final["max_seed_return"]), abs=0.01
  )
  assert final["median_seed_return"] == pytest.approx(float(np.median(returns)), abs=0.01)
  assert final["env_steps"] == summary["config"]["total_env_steps"]  # whole updates in smoke
  # All seeds' env steps over the training time (compilation excluded, unlike the wall time).
  all_steps = final["env_steps"] * summary["config"]["num_seeds"]
  assert (
    all_steps / summary["wall_time_s"]
    < final["env_steps_per_s"]
    == pytest.approx(all_steps / summary["train_time_s"])
  )
  # The seeds train independently: no parameter array (stacked over seeds) is the same for both.
  state = jax.tree.leaves_with_path(saved_state(tmp_path, summary["steps"]))
  params = [leaf for path, leaf in state if "['params']" in jax.tree_util.keystr(path)]
  assert params and not any(np.array_equal(leaf[0], leaf[1]) for leaf in params)
  assert (tmp_path / "returns.png").exists()


def test_sigkill_then_rerun_ends_bitwise_identical_and_rerunning_it_changes_nothing(tmp_path):
  long = ["--config.total_env_steps=7680", "--config.checkpoint_every_steps=2"]  # 40 chunks
  reference, killed = tmp_path / "reference", tmp_path / "killed"
  assert train("cartpole_ppo", reference, *long).returncode == 0
  proc = start_module(
    "experiments.train",
    f"--config={config_path('cartpole_ppo')}:smoke",
    f"--workdir={killed}",
    "--config.quiet=True",
    *long,
  )
  signal_after_checkpoint(proc, killed, 4, signal.SIGKILL)
  proc.wait()
  resumed = train("cartpole_ppo", killed, *long)
  assert resumed.returncode == 0, resumed.stderr
  ref, res = (json.loads((d / "summary.json").read_text()) for d in (reference, killed))
  assert res["resumed_from_step"] >= 4 and res["steps"] == ref["steps"] == 40
  assert without_rate(res["final"]) == without_rate(ref["final"])
  assert res["final"]["env_steps_per_s"] > 0  # the rate of the chunks after the resume
  assert_trees_equal(saved_state(reference, 40), saved_state(killed, 40))
  records = [json.loads(l) for l in (killed / "metrics.jsonl").read_text().splitlines()]
  ref_records = [json.loads(l) for l in (reference / "metrics.jsonl").read_text().splitlines()]
  assert [r for r in records if r["split"] == "train"] == [
    r for r in ref_records if r["split"] == "train"
  ]
  # A rerun of the finished run trains nothing: the same figures (and no env steps per second
  # over no steps, which once read 0.0) and the same training curve.
  assert train("cartpole_ppo", killed, *long).returncode == 0
  rerun = json.loads((killed / "summary.json").read_text())
  assert rerun["resumed_from_step"] == 40 and rerun["final"] == without_rate(ref["final"])
  rerun_records = [json.loads(l) for l in (killed / "metrics.jsonl").read_text().splitlines()]
  assert [r for r in rerun_records if r["split"] == "train"] == [
    r for r in records if r["split"] == "train"
  ]


def numpy_gae(reward, value, next_value, terminated, done, gamma, lam):
  advantage, running = np.zeros_like(reward), np.zeros_like(reward[0])
  for t in reversed(range(len(reward))):
    delta = reward[t] + gamma * (1 - terminated[t]) * next_value[t] - value[t]
    running = delta + gamma * lam * (1 - done[t]) * running
    advantage[t] = running
  return advantage, advantage + value


def test_rollout_keeps_a_cut_episodes_last_observation():
  from dljax.rl.agent import Agent, Setup
  from dljax.rl.envs import make
  from dljax.rl.rollout import rollout
  from dljax.rl.runner import Runner

  env, params = make("CartPole-v1")
  params = params.replace(max_episode_steps=3)  # episodes are cut after steps 3 and 6
  s = Setup(
    env=env,
    env_params=params,
    is_gym=False,
    num_seeds=1,
    num_envs=2,
    rollout_steps=7,
    chunk_updates=1,
    num_chunks=1,
  )
  push_left = Agent(
    init=None,
    draw_noise=lambda key, shape: jnp.zeros(shape),
    act=lambda state, obs, noise: (jnp.zeros(len(obs), jnp.int32), {}),
    update=None,
    greedy=None,
    identity={},
  )
  obs, env_state = jax.vmap(env.reset, (0, None))(jax.random.split(jax.random.key(0), 2), params)
  runner = Runner.start(None, env_state, obs, jax.random.key(1), num_envs=2)
  runner, trajectory = rollout(push_left, s, runner, jax.random.key(2))

  done = np.asarray(trajectory["truncated"])
  assert done.tolist() == [[t in (2, 5)] * 2 for t in range(7)]
  next_obs, obs = np.asarray(trajectory["next_obs"]), np.asarray(trajectory["obs"])
  np.testing.assert_array_equal(next_obs[:-1][~done[:-1]], obs[1:][~done[:-1]])
  # At a cut the trajectory keeps the episode's last observation (pushed left 3 times: moving
  # fast) and the next step starts a fresh episode (every component within CartPole's +-0.05).
  assert (next_obs[done][:, 1] < -0.2).all() and (np.abs(obs[[3, 6]]) <= 0.05).all()
  np.testing.assert_array_equal(runner.last_return, [3.0, 3.0])
  np.testing.assert_array_equal(runner.episode_return, [1.0, 1.0])
  np.testing.assert_array_equal(runner.env_state.time, [1, 1])


def test_gae_matches_numpy_reference():
  from dljax.rl.ppo import gae

  rng = np.random.default_rng(0)
  shape = (37, 5)
  reward, value, next_value = (rng.normal(size=shape).astype(np.float32) for _ in range(3))
  terminated = (rng.random(shape) < 0.1).astype(np.float32)
  done = np.maximum(terminated, (rng.random(shape) < 0.05).astype(np.float32))  # + truncations
  got = gae(*map(jnp.asarray, (reward, value, next_value, terminated, done)), 0.99, 0.95)
  want = numpy_gae(reward, value, next_value, terminated, done, 0.99, 0.95)
  for g, w in zip(got, want):
    np.testing.assert_allclose(np.asarray(g), w, rtol=1e-5, atol=1e-5)


def test_double_dqn_target_matches_numpy_reference():
  from dljax.rl.dqn import double_dqn_target

  rng = np.random.default_rng(0)
  reward = rng.normal(size=64).astype(np.float32)
  online_next_q, target_next_q = (rng.normal(size=(64, 3)).astype(np.float32) for _ in range(2))
  terminated = rng.random(64) < 0.2
  discount = 0.99 ** rng.integers(1, 4, size=64).astype(np.float32)
  got = double_dqn_target(
    *map(jnp.asarray, (reward, terminated, discount, online_next_q, target_next_q))
  )
  picked = target_next_q[np.arange(64), online_next_q.argmax(axis=1)]
  want = reward + discount * np.where(terminated, 0.0, picked)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-6)


def numpy_n_step(trajectory, n, gamma):
  """Step by step: sum up to n rewards, stopping after an episode's or the rollout's last step."""
  length, num_envs = trajectory["reward"].shape
  out = {k: np.zeros_like(trajectory[k]) for k in ("reward", "next_obs", "terminated")}
  out["discount"] = np.zeros_like(trajectory["reward"])
  for t in range(length):
    for i in range(num_envs):
      total, discount = 0.0, 1.0
      for u in range(t, min(t + n, length)):
        total += discount * trajectory["reward"][u, i]
        discount *= gamma
        if trajectory["terminated"][u, i] or trajectory["truncated"][u, i]:
          break
      out["reward"][t, i], out["discount"][t, i] = total, discount
      out["next_obs"][t, i], out["terminated"][t, i] = (
        trajectory["next_obs"][u, i],
        trajectory["terminated"][u, i],
      )
  return out


@pytest.mark.parametrize("n", [1, 3, 50])
def test_n_step_transitions_match_numpy_reference(n):
  from dljax.rl.dqn import n_step_transitions

  rng = np.random.default_rng(n)
  shape = (29, 6)
  terminated = rng.random(shape) < 0.1
  trajectory = {
    "obs": rng.normal(size=shape + (4,)).astype(np.float32),
    "action": rng.integers(0, 2, shape),
    "reward": rng.normal(size=shape).astype(np.float32),
    "next_obs": rng.normal(size=shape + (4,)).astype(np.float32),
    "terminated": terminated,
    "truncated": ~terminated & (rng.random(shape) < 0.05),
  }
  got = n_step_transitions(jax.tree.map(jnp.asarray, trajectory), n, 0.9)
  want = numpy_n_step(trajectory, n, 0.9)
  np.testing.assert_array_equal(got["obs"], trajectory["obs"])
  np.testing.assert_array_equal(got["action"], trajectory["action"])
  for key in ("next_obs", "terminated"):
    np.testing.assert_array_equal(got[key], want[key])
  for key in ("reward", "discount"):
    np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
  "config,args,message",
  [
    ("cartpole_ppo", ["--config.env=CartPol-v1"], "unknown environment 'CartPol-v1'.*CartPole-v1"),
    ("cartpole_dqn", ["--config.env=Pendulum-v1"], "DQN needs discrete actions.*PPO"),
    ("cartpole_ppo", ["--config.ppo.num_minibatches=7"], "not divisible by ppo.num_minibatches=7"),
    (
      "cartpole_ppo",
      ["--config.env=gym:NoSuchEnv-v0", "--config.num_seeds=1"],
      "gymnasium has no environment 'NoSuchEnv-v0'",
    ),
    ("cartpole_ppo", ["--config.env=gym:CartPole-v1"], "num_seeds=1"),
  ],
)
def test_bad_input_is_named(tmp_path, config, args, message):
  out = train(config, tmp_path, *args)
  assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
  assert re.search(message, out.stderr), out.stderr


def test_missing_gymnasium_is_named(monkeypatch):
  from conftest import load_config

  from dljax.errors import DljaxError
  from dljax.rl.agent import setup

  monkeypatch.setitem(sys.modules, "gymnasium", None)  # makes `import gymnasium` fail
  config = load_config("cartpole_ppo", "smoke", env="gym:CartPole-v1", num_seeds=1)
  with pytest.raises(DljaxError, match="pip install gymnasium"):
    setup(config)


def test_dqn_trains_through_the_gymnasium_bridge(tmp_path):
  # PPO through the bridge: tests/test_gym_bridge.py.
  out = train("cartpole_dqn", tmp_path, "--config.env=gym:CartPole-v1", "--config.num_seeds=1")
  assert out.returncode == 0, out.stderr
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["final"]["env_steps"] == summary["config"]["total_env_steps"]
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  q = [r["online_q"] for r in records if r["split"] == "train"]
  # From ~0 at initialisation the Q-values climb towards the discounted sum of CartPole's +1s.
  assert len(q) == summary["steps"] and q[-1] > q[0] + 0.2, q
