"""XLA-compiled training throughput of dljax models on whatever devices JAX sees.

  python -m benchmarks.throughput --models mlp,cnn,resnet [--batch_size 128] [--json FILE]
  python -m benchmarks.throughput --models ppo --envs CartPole-v1 --num_envs 1,64,4096

Per model: compile time, median step time, examples (or tokens) per second, FLOPs per step from
XLA's cost analysis, achieved GFLOP/s and the share of the device's peak. The train step is the
one the experiments use (dljax.steps.make_train_step), data-parallel over all devices. RL rows:
`ppo` is the full PPO chunk of experiments/configs/cartpole_ppo.py (rollouts and updates of all
seeds) in env-steps/s; `--envs` adds random-policy env-steps/s per env and parallel-env count.
"""

import dataclasses
import json
import statistics
import time
from typing import Any, Callable

from absl import flags

from dljax import cli

_MODELS = flags.DEFINE_list("models", ["mlp", "cnn", "resnet"], "Workloads to measure.")
_BATCH = flags.DEFINE_integer("batch_size", 0, "Batch size (0: each workload's default).")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps per repetition.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Repetitions; the median step time is reported.")
_CPU_DEVICES = flags.DEFINE_integer("cpu_devices", 0, "CPU devices (0: one per core, at most 8).")
_PEAK = flags.DEFINE_float("peak_tflops", 0.0,
                           "Device peak in TFLOP/s for the utilisation column (0: known table, or a "
                           "measured f32 matmul peak on CPU).")
_ENVS = flags.DEFINE_list("envs", [], "JAX envs for random-policy env-steps/s rows.")
_NUM_ENVS = flags.DEFINE_list("num_envs", ["1", "64", "4096"], "Parallel env counts for --envs.")
_JSON = flags.DEFINE_string("json", "", "Also write the results to this JSON file.")

# Dense float32 peak per device (TFLOP/s, vendor figures, no sparsity).
PEAK_TFLOPS_F32 = {"H100": 67.0, "H200": 67.0, "A100": 19.5, "TPU v4": 275.0, "TPU v5": 197.0}


@dataclasses.dataclass
class Workload:
  step: Callable  # jitted (state, feed) -> (state, metrics), state donated
  state: Any
  feed: Any
  items_per_step: int
  unit: str  # what items are: examples, tokens, env-steps


def vision_workload(model_name: str, image_shape: tuple, batch_size: int, mesh) -> Workload:
  import jax
  import jax.numpy as jnp
  from dljax import parallel
  from dljax.config import base_config
  from dljax.models import build_model
  from dljax.optim import make_optimizer
  from dljax.steps import make_train_step
  from dljax.tasks.classification import classification_loss
  from dljax.train_state import init_model_state
  from jax.sharding import NamedSharding, PartitionSpec as P
  model = build_model(model_name, num_classes=10)
  tx = make_optimizer(base_config().optimizer, 1000)
  state = jax.jit(lambda: init_model_state(model, tx, jax.random.PRNGKey(0),
                                           jnp.zeros((1, *image_shape))),
                  out_shardings=NamedSharding(mesh, P()))()
  batch = {"image": jax.random.uniform(jax.random.PRNGKey(1), (batch_size, *image_shape)),
           "label": jnp.arange(batch_size) % 10}
  batch = jax.device_put(batch, NamedSharding(mesh, P(parallel.DATA_AXIS)))
  return Workload(make_train_step(classification_loss), state, batch, batch_size, "examples")


def lm_workload(config_name: str, batch_size: int, mesh) -> Workload:
  """A language-model train step of a config's `cpu` variant on random characters (65 symbols)."""
  import jax
  import jax.numpy as jnp
  from jax.sharding import NamedSharding, PartitionSpec as P
  from dljax import parallel
  from dljax.cli import load_config
  from dljax.optim import make_optimizer
  from dljax.steps import make_train_step
  from dljax.tasks.language_model import build_from_spec, lm_loss, model_spec
  from dljax.train_state import init_model_state
  config = load_config(f"experiments/configs/{config_name}.py:cpu")
  batch_size = batch_size or config.batch_size
  model = build_from_spec(model_spec(config, vocab_size=65))
  tx = make_optimizer(config.optimizer, config.num_steps)
  tokens = jnp.zeros((1, config.block_size), jnp.int32)
  state = jax.jit(lambda: init_model_state(model, tx, jax.random.PRNGKey(0), tokens),
                  out_shardings=NamedSharding(mesh, P()))()
  windows = jax.random.randint(jax.random.PRNGKey(1), (batch_size, config.block_size + 1), 0, 65)
  batch = jax.device_put({"inputs": windows[:, :-1], "targets": windows[:, 1:]},
                         NamedSharding(mesh, P(parallel.DATA_AXIS)))
  return Workload(make_train_step(lm_loss), state, batch, batch_size * config.block_size, "tokens")


def ppo_workload(mesh) -> Workload:
  """One jitted chunk of cartpole_ppo: every seed's rollouts and PPO updates."""
  import jax
  from jax.sharding import NamedSharding, PartitionSpec as P
  from dljax.cli import load_config
  from dljax.errors import DljaxError
  from dljax.rl import common, ppo
  if mesh.size > 1:  # see dljax.rl.common.rl_config's cpu_devices
    raise DljaxError("the ppo row runs on one XLA:CPU device; add --cpu_devices=1")
  config = load_config("experiments/configs/cartpole_ppo.py")
  config.chunk_updates = 10
  exp = ppo.build_experiment(config, mesh)
  state = jax.jit(exp.init_state, out_shardings=NamedSharding(mesh, P()))()
  s = common.setup(config)
  return Workload(exp.train_step, state, None,
                  s.num_seeds * s.chunk_updates * s.steps_per_update, "env-steps")


WORKLOADS = {
    "mlp": lambda bs, mesh: vision_workload("mlp", (28, 28, 1), bs or 128, mesh),
    "cnn": lambda bs, mesh: vision_workload("cnn", (28, 28, 1), bs or 128, mesh),
    "resnet": lambda bs, mesh: vision_workload("resnet20", (32, 32, 3), bs or 128, mesh),
    "resnet18": lambda bs, mesh: vision_workload("resnet18", (32, 32, 3), bs or 128, mesh),
    "gpt": lambda bs, mesh: lm_workload("shakespeare_gpt", bs, mesh),
    "lstm": lambda bs, mesh: lm_workload("shakespeare_lstm", bs, mesh),
    "ppo": lambda bs, mesh: ppo_workload(mesh),
}


def device_peak_tflops(override: float) -> tuple[float, str]:
  """The peak used for utilisation: the flag, a known device, or a measured CPU matmul peak."""
  import jax
  import jax.numpy as jnp
  if override:
    return override, "--peak_tflops"
  kind = jax.devices()[0].device_kind
  for name, peak in PEAK_TFLOPS_F32.items():
    if name.lower() in kind.lower():
      return peak * jax.device_count(), f"{name} f32 spec x {jax.device_count()}"
  n = 2048
  a = jnp.ones((n, n), jnp.float32)
  matmul = jax.jit(lambda a: a @ a)
  matmul(a).block_until_ready()
  t0 = time.perf_counter()
  for _ in range(5):
    out = matmul(a)
  out.block_until_ready()
  return 2 * n ** 3 * 5 / (time.perf_counter() - t0) / 1e12, f"measured {n}^3 f32 matmul"


def xla_flops(compiled) -> float:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", 0.0)) if cost else 0.0


def measure(workload: Workload, steps: int, repeats: int, num_devices: int) -> dict:
  import jax
  t0 = time.perf_counter()
  compiled = workload.step.lower(workload.state, workload.feed).compile()
  compile_s = time.perf_counter() - t0
  state = workload.state
  for _ in range(2):  # warm-up: first executions allocate buffers
    state, metrics = compiled(state, workload.feed)
  jax.block_until_ready(metrics)
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    for _ in range(steps):
      state, metrics = compiled(state, workload.feed)
    jax.block_until_ready(metrics)
    times.append((time.perf_counter() - t0) / steps)
  step_s = statistics.median(times)
  # XLA's cost analysis describes the per-device SPMD program.
  flops = xla_flops(compiled) * num_devices
  return {"compile_s": compile_s, "step_ms": 1e3 * step_s,
          f"{workload.unit}_per_s": workload.items_per_step / step_s,
          "flops_per_step": flops, "gflops_per_s": flops / step_s / 1e9}


def main(argv):
  del argv
  from dljax import parallel
  parallel.setup_devices(_CPU_DEVICES.value)
  import jax
  mesh = parallel.make_data_mesh()
  peak, peak_source = device_peak_tflops(_PEAK.value)
  results = {"devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
             "jax": jax.__version__, "peak_tflops": peak, "peak_source": peak_source, "models": {}}
  print(f"{results['devices']}, jax {jax.__version__}, peak {peak:.3g} TFLOP/s ({peak_source})")
  print(f"{'model':10} {'compile s':>9} {'step ms':>9} {'items/s':>12} {'GFLOP/step':>11} "
        f"{'GFLOP/s':>9} {'util':>6}")
  for name in _MODELS.value:
    if name not in WORKLOADS:
      from dljax.errors import unknown_name
      raise unknown_name("benchmark model", name, WORKLOADS)
    with jax.set_mesh(mesh):
      workload = WORKLOADS[name](_BATCH.value, mesh)
      r = measure(workload, _STEPS.value, _REPEATS.value, mesh.size)
    r["utilisation"] = r["gflops_per_s"] / 1e3 / peak if peak else float("nan")
    r["unit"], r["batch"] = workload.unit, workload.items_per_step
    results["models"][name] = r
    print(f"{name:10} {r['compile_s']:9.2f} {r['step_ms']:9.2f} "
          f"{r[workload.unit + '_per_s']:10.4g} {workload.unit[:2]} {r['flops_per_step'] / 1e9:11.3f} "
          f"{r['gflops_per_s']:9.1f} {100 * r['utilisation']:5.1f}%")
  if _ENVS.value:
    from dljax.rl.envs.throughput import env_steps_per_second
    results["envs"] = {}
    for env in _ENVS.value:
      for num_envs in map(int, _NUM_ENVS.value):
        rate = env_steps_per_second(env, num_envs, num_steps=max(100, 400_000 // num_envs))
        results["envs"][f"{env} x{num_envs}"] = rate
        print(f"{env} x {num_envs:5d} envs (random policy): {rate:,.0f} env-steps/s")
  if _JSON.value:
    with open(_JSON.value, "w") as f:
      json.dump(results, f, indent=2)


if __name__ == "__main__":
  cli.run_main(main)
