"""An LSTM layer whose input projection runs outside the time loop.

The same function and parameters as `nn.RNN(nn.OptimizedLSTMCell(features))` (kernels `ii`, `if`,
`ig`, `io` without bias, `hi`, `hf`, `hg`, `ho` with bias, the same initialisers), arranged for
speed: the input's contribution to the four gates is one matmul over the whole sequence; the
scan carries only the recurrent matmul and one fused activation of the four gates; and the
backward pass (`lstm_scan`'s custom VJP) leaves the recurrent kernel's gradient to one matmul
after the loop. docs/benchmarks.md has the step times this arrangement was measured by.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.recurrent import DenseParams

GATES = "ifgo"  # input, forget, cell candidate, output: the order of the fused gate columns
# Time steps per loop iteration: fewer iterations, less loop overhead (measured fastest of 1, 2, 4,
# 8 on a 2-core CPU for the shakespeare_lstm:cpu step).
UNROLL = 4


def _gate_constants(features: int):
  """Per column of the fused gates: sigmoid(x) = 0.5 * tanh(0.5 * x) + 0.5 for i, f and o, tanh
  for g, so all four gates are one tanh over one array: tanh(x * scale) * scale + shift."""
  half, one = jnp.full(features, 0.5), jnp.ones(features)
  return jnp.concatenate([half, half, one, half]), jnp.concatenate([half, half, 1 - one, half])


def _fused_activations(gates):
  """Pre-activation gates (..., 4 * features) -> the activated i, f, g, o, still fused.

  One elementwise pass over the fused gates: on XLA:CPU, four separate activations of the four
  slices cost ~5x more inside the time loop (measured in docs/benchmarks.md).
  """
  scale, shift = _gate_constants(gates.shape[-1] // 4)
  return jnp.tanh(gates * scale) * scale + shift


def lstm_update(carry, gates):
  """One LSTM update from the pre-activation `gates` (..., 4 * features): (c, h) -> ((c, h), the
  activated gates, which the backward pass keeps)."""
  activations = _fused_activations(gates)
  i, f, g, o = jnp.split(activations, 4, axis=-1)
  c = f * carry[0] + i * g
  return (c, o * jnp.tanh(c)), activations


def _lstm_scan_forward(kernel, projected, carry):
  def step(carry, projected_t):
    carry, activations = lstm_update(carry, projected_t + carry[1] @ kernel)
    return carry, (carry[1], carry[0], activations)

  carry_out, (hs, cs, activations) = jax.lax.scan(step, carry, projected, unroll=UNROLL)
  return (carry_out, hs), (kernel, carry, hs, cs, activations)


@jax.custom_vjp
def lstm_scan(kernel, projected, carry):
  """The recurrence over `projected` (length, batch, 4 * features), the input part of the gates
  (bias included), with the recurrent `kernel` (features, 4 * features), from `carry` (c, h):
  (final carry, h of every step (length, batch, features))."""
  return _lstm_scan_forward(kernel, projected, carry)[0]


def _lstm_scan_backward(residuals, cotangents):
  # Backpropagation through time, by hand: the loop computes only what depends on the step
  # before (the gates' gradient and the recurrent dh = dgates @ kernel^T); the kernel's gradient,
  # a sum over steps, is one matmul afterwards instead of a small one accumulated in every step.
  kernel, (c0, h0), hs, cs, activations = residuals
  (dc_last, dh_last), dhs = cotangents
  c_prevs = jnp.concatenate([c0[None], cs[:-1]])
  h_prevs = jnp.concatenate([h0[None], hs[:-1]])
  scale, shift = _gate_constants(kernel.shape[0])
  kernel_t = kernel.T  # transposed once, outside the loop

  def step(carry, inputs):
    dc_next, dh_recurrent = carry
    dh_out, c_prev, c, activations = inputs
    i, f, g, o = jnp.split(activations, 4, axis=-1)
    dh = dh_out + dh_recurrent
    tanh_c = jnp.tanh(c)
    dc = dc_next + dh * o * (1 - tanh_c**2)
    dactivations = jnp.concatenate([dc * g, dc * c_prev, dc * i, dh * tanh_c], axis=-1)
    # d/dx [tanh(x * scale) * scale + shift] = scale^2 - (activation - shift)^2
    dgates = dactivations * (scale**2 - (activations - shift) ** 2)
    return (dc * f, dgates @ kernel_t), dgates

  carry, dgates = jax.lax.scan(
    step, (dc_last, dh_last), (dhs, c_prevs, cs, activations), reverse=True, unroll=UNROLL
  )
  dkernel = jnp.einsum("tbh,tbg->hg", h_prevs, dgates)
  return dkernel, dgates, carry


lstm_scan.defvjp(_lstm_scan_forward, _lstm_scan_backward)


class LSTM(nn.Module):
  """An LSTM cell with Flax's cell interface (`__call__(carry, x)` is one step, `initialize_carry`)
  and `sequence(carry, xs)`, which runs a whole sequence with the input projection hoisted."""

  features: int

  def setup(self):
    self.input_params = [
      DenseParams(self.features, use_bias=False, name=f"i{gate}") for gate in GATES
    ]
    self.hidden_params = [
      DenseParams(
        self.features, use_bias=True, kernel_init=nn.initializers.orthogonal(), name=f"h{gate}"
      )
      for gate in GATES
    ]

  def _input_kernel(self, x):
    return jnp.concatenate([params(x)[0] for params in self.input_params], axis=-1)

  def _recurrent_weights(self, h):
    kernels, biases = zip(*(params(h) for params in self.hidden_params))
    return jnp.concatenate(kernels, axis=-1), jnp.concatenate(biases, axis=-1)

  def __call__(self, carry, x):
    """One time step: x (batch, in) -> (new carry, output h (batch, features))."""
    kernel, bias = self._recurrent_weights(carry[1])
    carry, _ = lstm_update(carry, x @ self._input_kernel(x) + bias + carry[1] @ kernel)
    return carry, carry[1]

  def sequence(self, carry, xs):
    """xs (batch, length, in) -> (final carry, outputs h (batch, length, features))."""
    kernel, bias = self._recurrent_weights(carry[1])
    # (length, batch, 4 * features): time leads, so each scan step reads one contiguous slice.
    projected = jnp.swapaxes(xs, 0, 1) @ self._input_kernel(xs) + bias

    carry, outputs = lstm_scan(kernel, projected, carry)
    return carry, jnp.swapaxes(outputs, 0, 1)

  @nn.nowrap
  def initialize_carry(self, rng, input_shape):
    """The zero carry (c, h) for inputs of `input_shape` (batch..., in); `rng` is unused."""
    del rng
    zeros = jnp.zeros((*input_shape[:-1], self.features), jnp.float32)
    return zeros, zeros
