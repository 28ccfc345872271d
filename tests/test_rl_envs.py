"""Tests for dljax.rl.envs: gymnasium parity, jit/vmap, auto-reset, limits, errors."""

import os
import subprocess
import sys

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from dljax.errors import DljaxError
from dljax.rl.envs import (
  AutoReset,
  Box,
  CartPoleState,
  check_action,
  make,
  registered_names,
)

# Field order of gymnasium's `env.unwrapped.state` for each env.
GYM_STATE_FIELDS = {
  "CartPole-v1": ("x", "x_dot", "theta", "theta_dot"),
  "Acrobot-v1": ("theta1", "theta2", "dtheta1", "dtheta2"),
  "MountainCar-v0": ("position", "velocity"),
  "Pendulum-v1": ("theta", "theta_dot"),
}
# Long enough for every env to hit its time limit at least once (Acrobot: 500).
NUM_PARITY_STEPS = 600
FLOAT32_TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def random_action(space, rng: np.random.Generator):
  if isinstance(space, Box):
    low, high = space.bounds()
    return rng.uniform(low, high).astype(np.float32)
  return int(rng.integers(space.n))


@pytest.mark.parametrize("name", list(GYM_STATE_FIELDS))
def test_parity_with_gymnasium(name):
  env, params = make(name)
  reset, step = jax.jit(env.reset), jax.jit(env.step)
  gym_env = gymnasium.make(name, disable_env_checker=True)  # keeps TimeLimit
  rng = np.random.default_rng(0)
  key = jax.random.key(0)

  _, state = reset(key, params)
  gym_env.reset(seed=0)
  episode_ends = {"terminated": 0, "truncated": 0}
  for _ in range(NUM_PARITY_STEPS):
    # Re-sync every step, not just at episode ends: dljax integrates in
    # float32 and gymnasium in float64, and chaotic dynamics (Acrobot)
    # amplify that rounding difference over hundreds of steps.
    gym_env.unwrapped.state = np.array(
      [getattr(state, field) for field in GYM_STATE_FIELDS[name]], np.float64
    )
    action = random_action(env.action_space, rng)
    key, step_key, reset_key = jax.random.split(key, 3)
    obs, state, reward, terminated, truncated = step(step_key, state, action, params)
    gym_obs, gym_reward, gym_terminated, gym_truncated, _ = gym_env.step(action)

    assert obs.dtype == jnp.float32 and reward.dtype == jnp.float32
    np.testing.assert_allclose(obs, gym_obs, **FLOAT32_TOLERANCE)
    np.testing.assert_allclose(reward, gym_reward, **FLOAT32_TOLERANCE)
    assert bool(terminated) == gym_terminated
    assert bool(truncated) == gym_truncated
    if terminated or truncated:
      episode_ends["terminated"] += bool(terminated)
      episode_ends["truncated"] += bool(truncated)
      _, state = reset(reset_key, params)
      gym_env.reset()
  # A random policy topples CartPole long before its 500-step limit; the
  # other envs under a random policy only end by truncation.
  assert episode_ends["terminated" if name == "CartPole-v1" else "truncated"] > 0


@pytest.mark.parametrize("name", list(GYM_STATE_FIELDS))
def test_reset_distribution_matches_gymnasium(name):
  # The parity test above copies the state into gymnasium every step, so it never sees resets.
  num_resets = 2000
  env, params = make(name)
  keys = jax.random.split(jax.random.key(0), num_resets)
  _, states = jax.jit(jax.vmap(env.reset, (0, None)))(keys, params)
  ours = np.stack([np.asarray(getattr(states, field)) for field in GYM_STATE_FIELDS[name]], 1)
  gym_env = gymnasium.make(name).unwrapped
  gym_env.reset(seed=0)

  def gym_initial_state():
    gym_env.reset()
    return np.array(gym_env.state, np.float64)

  theirs = np.stack([gym_initial_state() for _ in range(num_resets)])
  for field, a, b in zip(GYM_STATE_FIELDS[name], ours.T, theirs.T):
    support = max(np.ptp(b), 1e-6)
    np.testing.assert_allclose(
      [a.min(), a.max()],
      [b.min(), b.max()],
      atol=0.01 * support,
      err_msg=f"{name} {field}: range of initial values",
    )
    assert scipy.stats.ks_2samp(a, b).pvalue > 1e-3, f"{name} {field}: initial distribution"


@pytest.mark.parametrize("name", registered_names())
def test_jit_vmap_64_envs(name):
  env, params = make(name)
  env = AutoReset(env)
  num_envs, num_steps = 64, 8

  @jax.jit
  def rollout(key):
    reset_key, scan_key = jax.random.split(key)
    _obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(reset_key, num_envs), params)

    def one_step(state, key):
      action_key, step_key = jax.random.split(key)
      actions = jax.vmap(env.action_space.sample)(jax.random.split(action_key, num_envs))
      obs, state, reward, terminated, truncated = jax.vmap(env.step, (0, 0, 0, None))(
        jax.random.split(step_key, num_envs), state, actions, params
      )
      return state, (obs, reward, terminated, truncated)

    return jax.lax.scan(one_step, state, jax.random.split(scan_key, num_steps))[1]

  obs, reward, terminated, truncated = rollout(jax.random.key(0))
  assert obs.shape == (num_steps, num_envs, *env.observation_space.shape)
  assert obs.dtype == reward.dtype == jnp.float32
  assert terminated.dtype == truncated.dtype == jnp.bool_
  assert np.all(np.isfinite(obs)) and np.all(np.isfinite(reward))
  # Different keys must give different episodes.
  assert np.unique(np.asarray(obs[0]), axis=0).shape[0] > 1


def test_params_are_vmappable():
  env, params = make("CartPole-v1")
  gravities = jnp.array([1.0, 9.8, 30.0])
  batched_params = jax.tree.map(lambda leaf: jnp.full(gravities.shape, leaf), params)
  batched_params = batched_params.replace(gravity=gravities)
  _, state = env.reset(jax.random.key(0), params)
  state = state.replace(theta=jnp.float32(0.1))
  obs, *_ = jax.jit(jax.vmap(env.step, (None, None, None, 0)))(
    jax.random.key(1), state, 1, batched_params
  )
  # Stronger gravity -> faster pole fall (larger angular velocity).
  assert np.all(np.diff(obs[:, 3]) > 0)


def test_auto_reset_on_termination():
  env = AutoReset(make("CartPole-v1")[0])
  params = env.default_params
  step = jax.jit(env.step)
  _, state = env.reset(jax.random.key(0), params)

  obs, state, _, terminated, _ = step(jax.random.key(1), state, 1, params)
  assert not terminated
  np.testing.assert_array_equal(state.final_observation, obs)

  # Pole just inside the 12 degree limit and falling: the next step terminates.
  falling = CartPoleState(*jnp.array([0.0, 0.0, 0.2, 1.0], jnp.float32), time=jnp.int32(5))
  obs, state, reward, terminated, truncated = step(
    jax.random.key(2), state.replace(env_state=falling), 1, params
  )
  assert terminated and not truncated and reward == 1.0
  assert state.final_observation[2] > params.theta_threshold_radians
  assert np.all(np.abs(obs) <= 0.05)  # CartPole's initial-state range
  assert state.env_state.time == 0
  np.testing.assert_array_equal(obs, env.env.observation(state.env_state, params))


def test_auto_reset_on_truncation_keeps_final_observation():
  env = AutoReset(make("Pendulum-v1")[0])
  params = env.default_params.replace(max_episode_steps=3)
  step = jax.jit(env.step)
  _, state = env.reset(jax.random.key(0), params)
  for step_index in range(3):
    obs, state, _, terminated, truncated = step(
      jax.random.key(step_index), state, jnp.zeros(1), params
    )
  assert truncated and not terminated
  assert state.env_state.time == 0
  assert not np.allclose(state.final_observation, obs)


@pytest.mark.parametrize("name", registered_names())
def test_time_limits_match_gymnasium(name):
  assert make(name)[1].max_episode_steps == gymnasium.spec(name).max_episode_steps


def test_truncation_at_exactly_max_episode_steps():
  env, params = make("Pendulum-v1")  # never terminates, so only the limit ends it
  _, state = env.reset(jax.random.key(0), params)

  def one_step(state, key):
    _, state, _, terminated, truncated = env.step(key, state, jnp.zeros(1), params)
    return state, (terminated, truncated)

  _, (terminated, truncated) = jax.jit(
    lambda state: jax.lax.scan(one_step, state, jax.random.split(jax.random.key(1), 200))
  )(state)
  assert not np.any(terminated)
  assert not np.any(truncated[:199]) and truncated[199]


def test_unknown_env_name():
  with pytest.raises(ValueError, match="'CartPole-v9'.*CartPole-v1.*Pendulum-v1") as error:
    make("CartPole-v9")
  assert isinstance(error.value, DljaxError)  # entry scripts print it without a traceback


def test_out_of_space_actions_raise_on_host():
  cartpole, cartpole_params = make("CartPole-v1")
  pendulum, pendulum_params = make("Pendulum-v1")
  key = jax.random.key(0)
  _, cartpole_state = cartpole.reset(key, cartpole_params)
  _, pendulum_state = pendulum.reset(key, pendulum_params)
  for bad_action in (2, -1, 1.0, np.array([1])):
    with pytest.raises(ValueError, match="action"):
      cartpole.step(key, cartpole_state, bad_action, cartpole_params)
  for bad_action in (
    np.array([2.5]),
    np.array([np.nan]),
    np.float32(1.0),
    np.zeros(2),
  ):
    with pytest.raises(ValueError, match="action"):
      pendulum.step(key, pendulum_state, bad_action, pendulum_params)
  with pytest.raises(ValueError, match="outside"):
    check_action(cartpole.action_space, np.array([0, 1, 3]), batch_shape=(3,))


def test_out_of_space_actions_are_clipped_under_jit():
  env, params = make("Pendulum-v1")
  step = jax.jit(env.step)
  key = jax.random.key(0)
  _, state = env.reset(key, params)
  clipped = step(key, state, jnp.array([5.0]), params)
  at_limit = step(key, state, jnp.array([2.0]), params)
  jax.tree.map(np.testing.assert_array_equal, clipped, at_limit)


def test_gym_bridge_cartpole():
  env, params = make("gym:CartPole-v1", num_envs=4)
  assert params is None and env.action_space.n == 2
  obs, _ = env.reset(seed=0)
  assert obs.shape == (4, 4) and obs.dtype == np.float32
  rng = np.random.default_rng(0)
  num_terminated = 0
  for _ in range(100):
    obs, reward, terminated, _truncated, info = env.step(rng.integers(2, size=4))
    assert obs.dtype == reward.dtype == np.float32 and terminated.shape == (4,)
    finished_last = info["final_observation"][terminated]
    x, theta = finished_last[:, 0], finished_last[:, 2]
    assert np.all((np.abs(x) > 2.4) | (np.abs(theta) > 0.2094))
    assert np.all(np.abs(obs[terminated]) <= 0.05)  # already reset
    num_terminated += terminated.sum()
  assert num_terminated > 0
  for bad_actions in (np.array([0, 1, 2, 0]), np.array([0, 1]), np.zeros(4)):
    with pytest.raises(ValueError, match="action"):
      env.step(bad_actions)
  env.close()


def test_gym_bridge_errors(monkeypatch):
  with pytest.raises(ValueError, match="gymnasium has no environment 'NoSuchEnv-v0'"):
    make("gym:NoSuchEnv-v0")
  monkeypatch.setitem(sys.modules, "gymnasium", None)
  with pytest.raises(ImportError, match="pip install gymnasium"):
    make("gym:CartPole-v1")


def test_envs_package_does_not_import_gymnasium():
  code = "import sys, dljax.rl.envs; assert 'gymnasium' not in sys.modules"
  repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = {**os.environ, "PYTHONPATH": repo_root, "JAX_PLATFORMS": "cpu"}
  subprocess.run([sys.executable, "-c", code], check=True, env=env)
