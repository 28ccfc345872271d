"""Throughput benchmark: environment steps per second under jit + vmap + scan."""

import time

import jax

from dljax.rl.envs.registry import make
from dljax.rl.envs.wrappers import AutoReset


def env_steps_per_second(name: str, num_envs: int, num_steps: int, seed: int = 0) -> float:
  """Steps/s of `num_envs` auto-resetting envs under a uniform random policy.

  The whole rollout (reset, then `num_steps` steps) is one jitted
  `lax.scan` over a `vmap` of the env; it is compiled ahead of time and
  run once untimed so that only execution is measured.
  """
  base_env, params = make(name)
  env = AutoReset(base_env)
  batched_reset = jax.vmap(env.reset, in_axes=(0, None))
  batched_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
  batched_sample = jax.vmap(env.action_space.sample)

  def rollout(key):
    reset_key, scan_key = jax.random.split(key)
    _, state = batched_reset(jax.random.split(reset_key, num_envs), params)

    def one_step(state, key):
      action_key, step_key = jax.random.split(key)
      actions = batched_sample(jax.random.split(action_key, num_envs))
      obs, state, _, terminated, truncated = batched_step(
        jax.random.split(step_key, num_envs), state, actions, params
      )
      # Outputs must depend on the dynamics: CartPole's constant reward
      # alone would let XLA skip the whole simulation.
      return state, (obs.sum(), (terminated | truncated).sum())

    _, (obs_sums, episode_ends) = jax.lax.scan(
      one_step, state, jax.random.split(scan_key, num_steps)
    )
    return obs_sums.sum(), episode_ends.sum()

  key = jax.random.key(seed)
  compiled = jax.jit(rollout).lower(key).compile()
  # The first run still pays one-off allocation/dispatch costs.
  jax.block_until_ready(compiled(key))
  start = time.perf_counter()
  jax.block_until_ready(compiled(key))
  return num_envs * num_steps / (time.perf_counter() - start)


if __name__ == "__main__":
  import argparse

  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--env", default="CartPole-v1")
  parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 64, 4096])
  parser.add_argument("--num-steps", type=int, default=1000)
  args = parser.parse_args()
  print(f"{jax.devices()[0].device_kind}, {args.env}, {args.num_steps} steps")
  for num_envs in args.num_envs:
    rate = env_steps_per_second(args.env, num_envs, args.num_steps)
    print(f"num_envs={num_envs:5d}: {rate:,.0f} env-steps/s")
