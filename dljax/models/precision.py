"""Mixed precision: the compute dtype a config names (`--config.dtype`), checked before any work.

With `dtype=bfloat16` a model computes its activations and matmuls in bfloat16 while its
parameters, the optimizer state and the loss stay float32 (Flax's `dtype`/`param_dtype` split):
the usual recipe on GPUs and TPUs, where bfloat16 matmuls run at twice the TF32 rate or more.
"""

import jax
import jax.numpy as jnp

from dljax.errors import DljaxError, unknown_name
from dljax.models import MODELS, model_fields

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}

# NVIDIA GPUs compute in bfloat16 from compute capability 8.0 (Ampere) on.
_MIN_BF16_COMPUTE_CAPABILITY = 8.0


def check_dtype(name: str, device) -> None:
  """Raises a DljaxError if `name` is not a known compute dtype or `device` cannot compute in it."""
  if name not in DTYPES:
    raise unknown_name("dtype", name, DTYPES)
  capability = getattr(device, "compute_capability", None)
  gpu = device.platform == "gpu" and capability
  if name == "bfloat16" and gpu and float(capability) < _MIN_BF16_COMPUTE_CAPABILITY:
    raise DljaxError(
      f"{device.device_kind} (compute capability {capability}) has no bfloat16 arithmetic; "
      f"use --config.dtype=float32"
    )


def dtype_kwargs(model_name: str, dtype: str) -> dict:
  """The model constructor's `dtype` argument for a run in `dtype` (none: a float32-only model)."""
  check_dtype(dtype, jax.devices()[0])
  if "dtype" in model_fields(model_name):
    return {"dtype": dtype}
  if dtype != "float32":
    with_dtype = ", ".join(name for name in MODELS if "dtype" in model_fields(name))
    raise DljaxError(
      f"model {model_name!r} computes only in float32; use --config.dtype=float32 or one of "
      f"the models with a dtype: {with_dtype}"
    )
  return {}
