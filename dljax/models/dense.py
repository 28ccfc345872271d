"""`Dense`: Flax's `nn.Dense` whose kernel gradient comes out in the kernel's own layout.

Autodiff of `y = x @ kernel` forms the kernel's gradient as `dy^T @ x`, shaped (out, in), and a
transpose to (in, out). XLA:CPU keeps the (out, in) product and folds the transpose into
everything that reads the gradient (its all-reduce over the devices, the clipping norm, the
optimizer's moments), which then read it with a stride. Computed as `x^T @ dy`, the gradient is
(in, out) from the start: the same function, parameters and forward pass, a faster step
(measured in docs/benchmarks.md).
"""

import functools

import flax.linen as nn
import jax
from jax import lax


def _forward(x, kernel, precision):
  return lax.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())), precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _matmul(x, kernel, precision):
  return _forward(x, kernel, precision)


def _matmul_fwd(x, kernel, precision):
  return _forward(x, kernel, precision), (x, kernel)


def _matmul_bwd(precision, residuals, dy):
  x, kernel = residuals
  rows = (-1, x.shape[-1]), (-1, dy.shape[-1])  # every leading axis is a row of the matmul
  dkernel = lax.dot_general(
    x.reshape(rows[0]), dy.reshape(rows[1]), (((0,), (0,)), ((), ())), precision=precision
  )  # (in, out)
  dx = lax.dot_general(dy, kernel, (((dy.ndim - 1,), (1,)), ((), ())), precision=precision)
  return dx, dkernel


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def kernel_layout_dot_general(x, kernel, dimension_numbers, precision=None, **unsupported):
  """`nn.Dense`'s contraction (x's last axis with a 2-D kernel's first) with `_matmul`'s VJP."""
  if kernel.ndim != 2 or dimension_numbers != (((x.ndim - 1,), (0,)), ((), ())) or unsupported:
    raise ValueError(
      f"kernel_layout_dot_general computes nn.Dense's x @ kernel only; got x {x.shape}, kernel "
      f"{kernel.shape}, {dimension_numbers}, {sorted(unsupported)}"
    )
  return _matmul(x, kernel, precision)


Dense = functools.partial(nn.Dense, dot_general=kernel_layout_dot_general)
