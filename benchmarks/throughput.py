"""XLA-compiled training throughput of dljax models on whatever devices JAX sees.

  python -m benchmarks.throughput --models mlp,cnn,resnet,lstm,gpt [--dtype bfloat16] [--json F]
  python -m benchmarks.throughput --models ppo --envs CartPole-v1 --num_envs 1,64,4096

Per model (benchmarks.workloads: each config's model, optimizer and train step on a fixed
synthetic batch): compile time, median step time, examples (or tokens) per second, the model's
training FLOPs per step counted from its shapes (benchmarks.flops) beside XLA's count, achieved
TFLOP/s and the model-FLOPs utilisation (MFU) against the device's peak (benchmarks.peaks). RL
rows: `ppo` is the full PPO chunk of experiments/configs/cartpole_ppo.py (rollouts and updates
of all seeds) in env-steps/s; `--envs` adds random-policy env-steps/s per env and env count.
"""

from absl import flags

from dljax import cli

_MODELS = flags.DEFINE_list("models", ["mlp", "cnn", "resnet"], "Workloads to measure.")
_BATCH = flags.DEFINE_integer("batch_size", 0, "Batch size (0: each workload's default).")
_DTYPE = flags.DEFINE_string("dtype", "float32", "Compute dtype: float32 or bfloat16.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps per repetition (whole calls).")
_STEPS_PER_CALL = flags.DEFINE_integer(
  "steps_per_call", 0, "Train steps per jitted call (0: each config's steps_per_call)."
)
_REPEATS = flags.DEFINE_integer("repeats", 5, "Repetitions; the median step time is reported.")
_CPU_DEVICES = flags.DEFINE_integer(
  "cpu_devices", 0, "CPU devices of each workload's mesh (0: its config's cpu_devices)."
)
_PEAK = flags.DEFINE_float(
  "peak_tflops", 0.0, "Device peak TFLOP/s for MFU (0: the table, or a timed matmul on CPU)."
)
_ENVS = flags.DEFINE_list("envs", [], "JAX envs for random-policy env-steps/s rows.")
_NUM_ENVS = flags.DEFINE_list("num_envs", ["1", "64", "4096"], "Parallel env counts for --envs.")
_JSON = flags.DEFINE_string("json", "", "Also write the results to this JSON file.")


def format_row(r: dict) -> str:
  flops = f"{r['flops_per_step'] / 1e9:10.3f}" if r["flops_per_step"] else f"{'n/a':>10}"
  xla = f"{r['xla_flops_per_step'] / 1e9:9.3f}{'' if r['xla_flops_complete'] else '*'}"
  mfu = f"{100 * r['mfu']:5.1f}%" if r["mfu"] is not None else f"{'n/a':>6}"
  rate = r[r["unit"] + "_per_s"]
  return (
    f"{r['model']:9} {r['batch']:6d} {r['compile_s']:8.2f} {r['median_ms']:9.2f} "
    f"{rate:10.4g} {r['unit'][:2]} {flops} {xla:>10} {mfu}"
  )


HEADER = (
  f"{'model':9} {'batch':>6} {'compile':>8} {'ms/step':>9} {'items/s':>13} "
  f"{'GFLOP/step':>10} {'XLA GFLOP':>10} {'MFU':>6}"
)
FOOTNOTE = (
  "GFLOP/step: the model's training FLOPs from its shapes (benchmarks.flops); XLA GFLOP: "
  "XLA's cost analysis of one step, * where it counts a loop body once (too low)."
)


def main(argv):
  del argv
  from dljax import parallel

  parallel.setup_devices()
  import jax

  from benchmarks import peaks, report, workloads
  from dljax.errors import DljaxError

  workloads.check_names(_MODELS.value)

  results = {
    "device": report.device(),
    "dtype": _DTYPE.value,
    "versions": report.versions(),
    "models": {},
  }
  peak, source = peaks.device_peak(_DTYPE.value, _PEAK.value)
  print(
    f"{results['device']}, jax {jax.__version__}, {_DTYPE.value}; peak per device: "
    + (f"{peak:.3g} TFLOP/s ({source})" if peak else source)
  )
  print(HEADER)
  for name in _MODELS.value:
    try:
      r = workloads.measure(
        name,
        _BATCH.value,
        _DTYPE.value,
        _STEPS.value,
        _REPEATS.value,
        _PEAK.value,
        _CPU_DEVICES.value,
        _STEPS_PER_CALL.value,
      )
    except DljaxError as e:  # e.g. a float32-only model in a bfloat16 run
      print(f"{name:9} skipped: {e}")
      continue
    results["models"][name] = r
    print(format_row(r), flush=True)
    if _JSON.value:  # after every row: a run stopped by a time limit keeps what it measured
      report.write_json(_JSON.value, results)
  print(FOOTNOTE)
  if _ENVS.value:
    from dljax.rl.envs.throughput import env_steps_per_second

    results["envs"] = {}
    for env in _ENVS.value:
      for num_envs in map(int, _NUM_ENVS.value):
        rate = env_steps_per_second(env, num_envs, num_steps=max(100, 400_000 // num_envs))
        results["envs"][f"{env} x{num_envs}"] = rate
        print(f"{env} x {num_envs:5d} envs (random policy): {rate:,.0f} env-steps/s")
  if _JSON.value:
    report.write_json(_JSON.value, results)


if __name__ == "__main__":
  cli.run_main(main)
