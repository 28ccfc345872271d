"""Autoregressive sampling from a sequence model, as one jitted ``lax.scan``.

A model samples here if it follows :class:`Autoregressive`: ``prefill`` consumes the prompt in
one call (GPT: fills a KV cache; RNN: scans the prompt into its recurrent carry) and each scan
step samples a token and feeds it back through ``decode_step``. Nothing here knows a model class:
a new sequence model plugs in by defining the two methods.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp


@runtime_checkable
class Autoregressive(Protocol):
  """The two methods `generate` calls, each through ``model.apply(variables, ..., method=NAME)``.

  The decode state is any pytree the model chooses (a KV cache, a recurrent carry...).
  """

  def prefill(self, prompt: jax.Array, num_tokens: int) -> tuple[jax.Array, Any]:
    """``prompt`` (batch, length) int32, before ``num_tokens`` are sampled (a model with a
    bounded context plans for them) -> (logits (batch, vocab) of the next token, decode state).
    """

  def decode_step(self, state: Any, token: jax.Array) -> tuple[jax.Array, Any]:
    """Feeds ``token`` (batch,) int32 -> (logits (batch, vocab) of the token after it, state)."""


def generate(
  model: Autoregressive,
  params,
  prompt_tokens,
  num_tokens: int,
  key: jax.Array,
  temperature: float = 1.0,
  top_k: int | None = None,
  top_p: float | None = None,
) -> jax.Array:
  """Sample ``num_tokens`` tokens that continue ``prompt_tokens``.

  ``prompt_tokens``: int array (length,) or (batch, length), length >= 1.
  Returns only the new tokens, shaped (num_tokens,) or (batch, num_tokens).
  ``temperature=0`` is greedy decoding; ``top_k`` keeps the k most likely
  tokens and ``top_p`` the smallest set whose probability reaches p (nucleus).
  """
  prompt = jnp.asarray(prompt_tokens, dtype=jnp.int32)
  if prompt.ndim not in (1, 2) or prompt.shape[-1] == 0:
    raise ValueError(
      f"prompt_tokens must be a non-empty (length,) or (batch, length) array, got {prompt.shape}"
    )
  if not (math.isfinite(temperature) and temperature >= 0):  # NaN logits would sample nothing
    raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
  if top_k is not None and top_k < 1:
    raise ValueError(f"top_k must be >= 1, got {top_k}")
  if top_p is not None and not 0.0 < top_p <= 1.0:
    raise ValueError(f"top_p must be in (0, 1], got {top_p}")
  if not isinstance(model, Autoregressive):
    raise TypeError(
      f"generate needs a model with prefill and decode_step methods (dljax.models.generation."
      f"Autoregressive); {type(model).__name__} has not both"
    )
  batched = prompt if prompt.ndim == 2 else prompt[None]
  tokens = _generate(model, params, batched, key, num_tokens, float(temperature), top_k, top_p)
  return tokens if prompt.ndim == 2 else tokens[0]


@functools.partial(jax.jit, static_argnums=(0, 4, 5, 6, 7))
def _generate(model, params, prompt, key, num_tokens, temperature, top_k, top_p):
  logits, state = model.apply(params, prompt, num_tokens, method="prefill")
  if top_k is not None:
    top_k = min(top_k, logits.shape[-1])  # as nanoGPT: k beyond the vocabulary keeps all of it

  def sample_and_feed(carry, step_key):
    state, logits = carry
    token = sample_token(logits, step_key, temperature, top_k, top_p)
    logits, state = model.apply(params, state, token, method="decode_step")
    return (state, logits), token

  _, tokens = jax.lax.scan(sample_and_feed, (state, logits), jax.random.split(key, num_tokens))
  return tokens.T


def sample_token(
  logits, key, temperature: float, top_k: int | None = None, top_p: float | None = None
):
  """One token per row of ``logits`` (batch, vocab); temperature 0 is argmax."""
  if temperature == 0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = logits.astype(jnp.float32) / temperature
  if top_k is not None:
    kth_largest = jax.lax.top_k(logits, top_k)[0][:, -1:]
    logits = jnp.where(logits < kth_largest, -jnp.inf, logits)
  if top_p is not None:
    sorted_logits = jnp.sort(logits, axis=-1)[:, ::-1]
    probabilities = jax.nn.softmax(sorted_logits, axis=-1)
    mass_before = jnp.cumsum(probabilities, axis=-1) - probabilities
    # The most likely token always has mass_before 0, so at least one survives.
    cutoff = jnp.min(jnp.where(mass_before < top_p, sorted_logits, jnp.inf), axis=-1, keepdims=True)
    logits = jnp.where(logits < cutoff, -jnp.inf, logits)
  return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)
