"""Checking `jax.grad` against finite differences: the basics chapter's test of autodiff.

For every coordinate i of the flattened parameters, the central difference

  d_i = (f(theta + eps e_i) - f(theta - eps e_i)) / (2 eps)

approximates the partial derivative with an O(eps^2) error. In float64 with eps = 1e-6 that
error and the rounding error (~1e-16 / eps) are both around 1e-10, so a correct gradient agrees to
~1e-7 relative error or better, while a wrong one is off by a visible fraction.
"""

import functools

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jax.tree_util import Partial


@functools.partial(jax.jit, static_argnums=2)
def finite_difference_gradient(f, params, eps: float) -> jax.Array:
  """Central differences of scalar `f` for every coordinate of `params`, flattened."""
  flat, unravel = ravel_pytree(params)

  def central_difference(i):
    step = jnp.zeros_like(flat).at[i].set(eps)
    return (f(unravel(flat + step)) - f(unravel(flat - step))) / (2 * eps)

  return jax.lax.map(central_difference, jnp.arange(flat.size), batch_size=256)


@jax.jit
def _gradient(f, params):
  return ravel_pytree(jax.grad(f)(params))[0]


def max_relative_error(f, params, eps: float = 1e-6) -> float:
  """max_i |g_i - d_i| / max(|g_i|, |d_i|) between `jax.grad(f)` and central differences.

  Both run in float64 (`params` are cast; `f` must not cast back to float32). Coordinates where
  both derivatives are exactly zero count as agreeing. Pass `f` as a `jax.tree_util.Partial` of
  one function and its changing arguments (e.g. the train state) to compile the check only once.
  """
  f = f if isinstance(f, Partial) else Partial(f)
  with jax.enable_x64(True):
    params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), params)
    grad = _gradient(f, params)
    differences = finite_difference_gradient(f, params, eps)
    scale = jnp.maximum(jnp.abs(grad), jnp.abs(differences))
    error = jnp.where(scale > 0, jnp.abs(grad - differences) / jnp.where(scale > 0, scale, 1), 0)
    return float(error.max())
