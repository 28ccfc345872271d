"""Numerical helpers shared by the classic-control environments."""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp


def wrap_angle(angle: jax.Array) -> jax.Array:
  """Map an angle into `[-pi, pi)`.

  Same as gymnasium's Acrobot `wrap` and Pendulum `angle_normalize` up
  to the `pi` endpoint, which `wrap` keeps as `pi`.
  """
  return jnp.mod(angle + math.pi, 2 * math.pi) - math.pi


def rk4_step(derivative: Callable[[jax.Array], jax.Array], y: jax.Array, dt) -> jax.Array:
  """One classic Runge-Kutta step, as gymnasium's `rk4(derivs, y0, [0, dt])`."""
  k1 = derivative(y)
  k2 = derivative(y + dt / 2.0 * k1)
  k3 = derivative(y + dt / 2.0 * k2)
  k4 = derivative(y + dt * k3)
  return y + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
