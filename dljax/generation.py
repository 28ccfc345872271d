"""Autoregressive sampling from the sequence models, as one jitted ``lax.scan``.

The prompt is consumed in one call (GPT: prefill of the KV cache; RNN: a scan
that yields the recurrent carry), then each scan step samples a token and
feeds it back. For GPT, once the context holds ``block_size`` tokens the window
slides like nanoGPT's ``idx[:, -block_size:]``: the cache is recomputed from the
last ``block_size`` tokens, because learned absolute positions make the cached
keys of a shifted window invalid. Sampling is therefore exactly nanoGPT's, and
only steps past the first full window pay for a full forward pass.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from dljax.models.gpt import GPT, init_kv_cache
from dljax.models.rnn_lm import RNNLM


def generate(
  model: GPT | RNNLM,
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
  Prompts longer than a GPT's ``block_size`` are cropped to the last
  ``block_size`` tokens, as in nanoGPT.
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
  if top_k is not None:
    top_k = min(top_k, model.vocab_size)  # as nanoGPT: k beyond the vocabulary keeps all of it
  if top_p is not None and not 0.0 < top_p <= 1.0:
    raise ValueError(f"top_p must be in (0, 1], got {top_p}")
  if not isinstance(model, (GPT, RNNLM)):
    raise TypeError(f"generate supports GPT and RNNLM, got {type(model).__name__}")
  batched = prompt if prompt.ndim == 2 else prompt[None]
  tokens = _generate(model, params, batched, key, num_tokens, float(temperature), top_k, top_p)
  return tokens if prompt.ndim == 2 else tokens[0]


@functools.partial(jax.jit, static_argnums=(0, 4, 5, 6, 7))
def _generate(model, params, prompt, key, num_tokens, temperature, top_k, top_p):
  if isinstance(model, GPT):
    state, logits, step = _gpt_decoder(model, params, prompt, num_tokens)
  else:
    state, logits, step = _rnn_decoder(model, params, prompt)

  def sample_and_feed(carry, step_key):
    state, logits = carry
    token = sample_token(logits, step_key, temperature, top_k, top_p)
    state, logits = step(state, token)
    return (state, logits), token

  _, tokens = jax.lax.scan(sample_and_feed, (state, logits), jax.random.split(key, num_tokens))
  return tokens.T


def _gpt_decoder(model: GPT, params, prompt, num_tokens):
  """Prefilled (cache, window) state, next-token logits and the step function of a GPT."""
  prompt = prompt[:, -model.block_size :]
  batch_size, prompt_length = prompt.shape
  logits, cache = model.apply(params, prompt, kv_cache=init_kv_cache(model, batch_size))
  # The window mirrors the cache contents so a full cache can be rebuilt after sliding.
  window = jnp.zeros((batch_size, model.block_size), jnp.int32).at[:, :prompt_length].set(prompt)

  def extend(state, token):
    cache, window = state
    window = jax.lax.dynamic_update_slice(window, token[:, None], (0, cache.length))
    logits, cache = model.apply(params, token[:, None], kv_cache=cache)
    return (cache, window), logits[:, -1]

  def slide(state, token):
    _, window = state
    window = jnp.concatenate([window[:, 1:], token[:, None]], axis=1)
    logits, cache = model.apply(params, window, kv_cache=init_kv_cache(model, batch_size))
    return (cache, window), logits[:, -1]

  def step(state, token):
    return jax.lax.cond(state[0].length < model.block_size, extend, slide, state, token)

  # The last sampled token is never fed back, hence the - 1.
  never_full = prompt_length + num_tokens - 1 <= model.block_size
  return (cache, window), logits[:, -1], extend if never_full else step


def _rnn_decoder(model: RNNLM, params, prompt):
  """Carry after the prompt, next-token logits and the step function of an RNN LM."""
  initial = model.apply(params, prompt.shape[0], method=RNNLM.init_carry)
  logits, carry = model.apply(params, prompt, carry=initial)

  def step(carry, token):
    return model.apply(params, carry, token, method=RNNLM.step)

  return carry, logits[:, -1], step


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
