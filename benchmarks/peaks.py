"""Peak FLOP/s of the device, for model-FLOPs utilisation (MFU): by device kind and the precision
the matmuls run at, or measured with a timed matmul on CPUs.

JAX runs float32 matmuls on NVIDIA GPUs (Ampere on) as TF32 unless the matmul precision is set to
"highest" (`jax_default_matmul_precision`), and on TPUs as single bfloat16 passes: a "float32"
run is measured against the peak of the precision it really gets, and the source says which.
"""

import functools
import time

# Dense (no sparsity) TFLOP/s per chip, by matmul precision. Sources:
# - NVIDIA H100 Tensor Core GPU datasheet (SXM5): BF16 989.4, TF32 494.7, FP32 66.9;
#   PCIe: BF16 756, TF32 378, FP32 51.2. The H200 has the H100 SXM's compute (NVIDIA H200
#   datasheet: BF16 989, TF32 494, FP32 67).
# - NVIDIA A100 datasheet: BF16 312, TF32 156, FP32 19.5.
# - Google Cloud TPU system architecture pages, per chip BF16: v4 275, v5e 197, v5p 459,
#   v6e (Trillium) 918.
# Matched in order against jax's device_kind, lower-cased ("NVIDIA H100 80GB HBM3",
# "NVIDIA H200", "NVIDIA A100-SXM4-80GB", "TPU v4", "TPU v5 lite", "TPU v5p", "TPU v6 lite").
_HOPPER = {"bf16": 989.4, "tf32": 494.7, "fp32": 66.9}
PEAK_TFLOPS = (
  ("h100 pcie", {"bf16": 756.0, "tf32": 378.0, "fp32": 51.2}),
  ("h100", _HOPPER),
  ("h200", _HOPPER),
  ("a100", {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5}),
  ("tpu v4", {"bf16": 275.0}),
  ("tpu v5 lite", {"bf16": 197.0}),
  ("tpu v5e", {"bf16": 197.0}),
  ("tpu v5", {"bf16": 459.0}),  # v5p
  ("tpu v6", {"bf16": 918.0}),  # v6e
)


def matmul_precision(dtype: str, platform: str, precision_flag) -> str:
  """The precision a `dtype` run's matmuls execute at on `platform` (bf16, tf32 or fp32)."""
  if dtype == "bfloat16":
    return "bf16"
  highest = str(precision_flag).lower() in ("highest", "float32", "precision.highest")
  if platform == "gpu" and not highest:
    return "tf32"
  if platform == "tpu" and not highest:
    return "bf16"
  return "fp32"


def table_peak(device_kind: str, precision: str) -> float | None:
  """The table's TFLOP/s of one `device_kind` chip at `precision`, None if unknown."""
  kind = device_kind.lower()
  for name, peaks in PEAK_TFLOPS:
    if name in kind:
      return peaks.get(precision)
  return None


@functools.cache
def measured_cpu_peak(dtype: str, n: int = 1024, repeats: int = 5) -> float:
  """TFLOP/s of the fastest of `repeats` timed n x n matmuls (the host is shared: the best run
  is the closest to what the cores can do)."""
  import jax
  import jax.numpy as jnp

  a = jnp.ones((n, n), dtype)
  matmul = jax.jit(lambda a: a @ a)
  matmul(a).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    matmul(a).block_until_ready()
    best = min(best, time.perf_counter() - t0)
  return 2 * n**3 / best / 1e12


def device_peak(
  dtype: str, override: float = 0.0, num_devices: int = 1
) -> tuple[float | None, str]:
  """(TFLOP/s of `num_devices` accelerators or of the host, where that figure comes from); the
  TFLOP/s are None if unknown."""
  import jax

  if override:
    return override, "--peak_tflops"
  device = jax.devices()[0]
  if device.platform == "cpu":
    # One XLA:CPU device already computes on all of the host's cores.
    return measured_cpu_peak(dtype), f"measured {dtype} 1024^3 matmul (the host's cores)"
  precision = matmul_precision(dtype, device.platform, jax.config.jax_default_matmul_precision)
  peak = table_peak(device.device_kind, precision)
  if peak is None:
    return None, f"peak unknown for {device.device_kind!r} at {precision}; pass --peak_tflops"
  return peak * num_devices, f"{device.device_kind} {precision} spec x {num_devices}"
