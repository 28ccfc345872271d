"""nanoGPT-style decoder-only Transformer language model (Flax Linen).

Mirrors Karpathy's nanoGPT ``model.py``: one :class:`GPTConfig` read by every module, learned
token and position embeddings, pre-LayerNorm blocks with causal multi-head self-attention and a
4x GELU MLP, a final LayerNorm and an output projection tied to the token embedding. The same
module decodes incrementally with an explicit :class:`KVCache` pytree (:meth:`GPT.prefill`,
:meth:`GPT.decode_step`), which keeps the whole sampling loop a single ``lax.scan``
(see :mod:`dljax.models.generation`).

Shapes in comments: B batch, T sequence length, C ``n_embd``, H ``n_head``, D head width C / H,
V ``vocab_size``, L ``n_layer``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from dljax.models.dense import Dense
from dljax.models.embedding import embed_tokens

# nanoGPT's initialisation: N(0, 0.02) for every weight matrix and embedding.
_weight_init = nn.initializers.normal(stddev=0.02)


@dataclasses.dataclass(frozen=True)
class GPTConfig:
  """The model's hyperparameters (nanoGPT's ``GPTConfig``); Block and Attention read them here."""

  vocab_size: int  # V: tokens in the vocabulary (65 characters for tiny-shakespeare)
  block_size: int  # longest context; the learned position embedding has this many rows
  n_layer: int = 4  # L: Transformer blocks
  n_head: int = 4  # H: attention heads, each of width D = C / H
  n_embd: int = 128  # C: width of the residual stream
  dropout: float = 0.0  # on the embeddings and each residual branch (not on attention weights)
  bias: bool = True  # biases in the Dense layers and LayerNorms (nanoGPT's shakespeare: False)
  # Attention by einsums that sow their weights (plots; ~10% faster on CPU), else
  # jax.nn.dot_product_attention, which lets accelerators pick a fused kernel.
  explicit_attention: bool = False
  # Compute dtype (activations, matmuls, logits); parameters stay float32, LayerNorm statistics
  # and the attention softmax are computed in float32.
  dtype: Any = jnp.float32


def _residual_init(config: GPTConfig):
  """nanoGPT scales the init of residual projections by 1/sqrt(2 * n_layer)."""
  return nn.initializers.normal(stddev=0.02 / math.sqrt(2 * config.n_layer))


@flax.struct.dataclass
class KVCache:
  """Keys and values of the positions decoded so far.

  ``keys``/``values`` have shape (L, B, block_size, H, D); slots at or beyond ``length`` are
  unused and masked out of attention.
  """

  keys: jax.Array
  values: jax.Array
  length: jax.Array  # int32 scalar


def init_kv_cache(config: GPTConfig, batch_size: int) -> KVCache:
  """An empty cache with room for ``block_size`` positions, in the compute dtype."""
  head_dim = config.n_embd // config.n_head
  shape = (config.n_layer, batch_size, config.block_size, config.n_head, head_dim)
  zeros = jnp.zeros(shape, config.dtype)
  return KVCache(zeros, zeros, jnp.zeros((), jnp.int32))


@flax.struct.dataclass
class DecodeState:
  """What :meth:`GPT.decode_step` carries from token to token."""

  cache: KVCache
  # (B, block_size) int32: the tokens the cache holds, to rebuild it once the window slides.
  window: jax.Array
  # Whether the context fills up before sampling ends (static: without it, no window code).
  slides: bool = flax.struct.field(pytree_node=False)


class CausalSelfAttention(nn.Module):
  """Multi-head causal self-attention, optionally reading/extending a layer's KV cache.

  With ``explicit_attention`` the softmax probabilities are computed with einsums and sown into
  the 'intermediates' collection as ``attention_weights``. Attention-probability dropout is not
  applied (the fused op has none); residual dropout is.
  """

  config: GPTConfig

  @nn.compact
  def __call__(self, x, deterministic: bool, layer_cache=None, cache_length=None):
    c = self.config
    batch, length, width = x.shape  # (B, T, C)
    head_dim = width // c.n_head
    qkv = Dense(3 * width, use_bias=c.bias, kernel_init=_weight_init, dtype=c.dtype, name="c_attn")(
      x
    )
    qkv = qkv.reshape(batch, length, 3, c.n_head, head_dim)
    query, key, value = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # each (B, T, H, D)

    if layer_cache is None:
      mask = None
    else:
      cached_keys, cached_values = layer_cache  # each (B, block_size, H, D)
      key = jax.lax.dynamic_update_slice(cached_keys, key, (0, cache_length, 0, 0))
      value = jax.lax.dynamic_update_slice(cached_values, value, (0, cache_length, 0, 0))
      query_positions = cache_length + jnp.arange(length)
      key_positions = jnp.arange(key.shape[1])
      # Also hides the not-yet-written slots, which all lie after the queries.
      mask = (key_positions[None, :] <= query_positions[:, None])[None, None]
    new_layer_cache = (key, value)

    if c.explicit_attention:
      scores = jnp.einsum("bqhd,bkhd->bhqk", query, key) / math.sqrt(head_dim)  # (B, H, T, T')
      if mask is None:
        mask = jnp.tril(jnp.ones((length, length), dtype=bool))[None, None]
      # The softmax runs in float32 whatever the compute dtype (bfloat16 logits lose the tail).
      scores = jnp.where(mask, scores.astype(jnp.float32), jnp.finfo(jnp.float32).min)
      probabilities = jax.nn.softmax(scores, axis=-1)
      self.sow("intermediates", "attention_weights", probabilities)
      y = jnp.einsum("bhqk,bkhd->bqhd", probabilities.astype(value.dtype), value)
    else:
      y = jax.nn.dot_product_attention(query, key, value, mask=mask, is_causal=mask is None)

    y = y.reshape(batch, length, width)
    y = Dense(width, use_bias=c.bias, kernel_init=_residual_init(c), dtype=c.dtype, name="c_proj")(
      y
    )
    y = nn.Dropout(c.dropout)(y, deterministic=deterministic)
    return y, new_layer_cache


class MLP(nn.Module):
  """Position-wise 4x-wide feed-forward layer with exact (erf) GELU, as torch's nn.GELU."""

  config: GPTConfig

  @nn.compact
  def __call__(self, x, deterministic: bool):
    c = self.config
    h = Dense(4 * c.n_embd, use_bias=c.bias, kernel_init=_weight_init, dtype=c.dtype, name="c_fc")(
      x
    )  # (B, T, 4C)
    h = nn.gelu(h, approximate=False)
    h = Dense(
      c.n_embd, use_bias=c.bias, kernel_init=_residual_init(c), dtype=c.dtype, name="c_proj"
    )(h)
    return nn.Dropout(c.dropout)(h, deterministic=deterministic)


class Block(nn.Module):
  """Pre-LayerNorm Transformer block."""

  config: GPTConfig

  @nn.compact
  def __call__(self, x, deterministic: bool, layer_cache=None, cache_length=None):
    c = self.config
    ln_1 = nn.LayerNorm(epsilon=1e-5, use_bias=c.bias, dtype=c.dtype, name="ln_1")
    attention = CausalSelfAttention(c, name="attn")
    h, new_layer_cache = attention(ln_1(x), deterministic, layer_cache, cache_length)
    x = x + h
    ln_2 = nn.LayerNorm(epsilon=1e-5, use_bias=c.bias, dtype=c.dtype, name="ln_2")
    x = x + MLP(c, name="mlp")(ln_2(x), deterministic)
    return x, new_layer_cache


class GPT(nn.Module):
  """Decoder-only Transformer over a token vocabulary.

  ``model.apply(params, tokens)`` returns logits (B, T, V) for T <= block_size tokens at
  positions 0..T-1. With ``kv_cache``, the tokens are placed at positions ``kv_cache.length ...``
  after the cached ones and ``(logits, extended_cache)`` is returned; the caller keeps
  ``kv_cache.length + T <= block_size``. Dropout needs ``deterministic=False`` and a 'dropout'
  rng.
  """

  config: GPTConfig

  @nn.compact
  def __call__(self, tokens, *, deterministic: bool = True, kv_cache: KVCache | None = None):
    c = self.config
    length = tokens.shape[1]
    if length > c.block_size:
      raise ValueError(f"sequence length {length} exceeds block_size {c.block_size}")
    if c.n_embd % c.n_head:
      raise ValueError(f"n_embd {c.n_embd} is not divisible by n_head {c.n_head}")

    token_embedding = nn.Embed(
      c.vocab_size, c.n_embd, embedding_init=_weight_init, dtype=c.dtype, name="wte"
    )
    position_embedding = self.param("wpe", _weight_init, (c.block_size, c.n_embd))
    start = 0 if kv_cache is None else kv_cache.length
    positions = start + jnp.arange(length)
    x = embed_tokens(token_embedding, tokens) + position_embedding[positions].astype(c.dtype)
    x = nn.Dropout(c.dropout)(x, deterministic=deterministic)  # (B, T, C)

    new_keys, new_values = [], []
    for layer in range(c.n_layer):
      layer_cache = None if kv_cache is None else (kv_cache.keys[layer], kv_cache.values[layer])
      x, (keys, values) = Block(c, name=f"h_{layer}")(x, deterministic, layer_cache, start)
      new_keys.append(keys)
      new_values.append(values)

    x = nn.LayerNorm(epsilon=1e-5, use_bias=c.bias, dtype=c.dtype, name="ln_f")(x)
    logits = token_embedding.attend(x)  # (B, T, V)
    if kv_cache is None:
      return logits
    return logits, KVCache(jnp.stack(new_keys), jnp.stack(new_values), kv_cache.length + length)

  # The autoregressive protocol of dljax.models.generation. Past block_size tokens the window
  # slides as nanoGPT's ``idx[:, -block_size:]``: the cache is recomputed from the last
  # block_size tokens, because learned absolute positions make the cached keys of a shifted
  # window invalid. Only steps past the first full window pay for a full forward pass.

  def prefill(self, prompt, num_tokens: int):
    """Caches ``prompt`` (B, T) (cropped to its last block_size tokens, as nanoGPT) before
    ``num_tokens`` are sampled: (next-token logits (B, V), decode state)."""
    block_size = self.config.block_size
    prompt = prompt[:, -block_size:]
    batch_size, prompt_length = prompt.shape
    logits, cache = self(prompt, kv_cache=init_kv_cache(self.config, batch_size))
    window = jnp.zeros((batch_size, block_size), jnp.int32).at[:, :prompt_length].set(prompt)
    # The last sampled token is never fed back, hence the - 1.
    slides = prompt_length + num_tokens - 1 > block_size
    return logits[:, -1], DecodeState(cache, window, slides)

  def decode_step(self, state: DecodeState, token):
    """Feeds ``token`` (B,): (logits (B, V) of the token after it, new state)."""
    if not state.slides:
      return self._extend(state, token)
    room = state.cache.length < self.config.block_size
    return nn.cond(room, GPT._extend, GPT._slide, self, state, token)

  def _extend(self, state: DecodeState, token):
    window = jax.lax.dynamic_update_slice(state.window, token[:, None], (0, state.cache.length))
    logits, cache = self(token[:, None], kv_cache=state.cache)
    return logits[:, -1], DecodeState(cache, window, state.slides)

  def _slide(self, state: DecodeState, token):
    window = jnp.concatenate([state.window[:, 1:], token[:, None]], axis=1)
    logits, cache = self(window, kv_cache=init_kv_cache(self.config, window.shape[0]))
    return logits[:, -1], DecodeState(cache, window, state.slides)


def build_gpt(**fields) -> GPT:
  """A GPT from its config's fields: the registry's constructor (config blocks and checkpoint
  specs are flat)."""
  return GPT(GPTConfig(**fields))


# The registry reads which fields a model declares from its constructor's signature.
build_gpt.__signature__ = inspect.signature(GPTConfig)


def attention_weights(model: GPT, params, tokens) -> jax.Array:
  """Attention probabilities of every layer, shape (L, B, H, T, T)."""
  explicit = model.clone(config=dataclasses.replace(model.config, explicit_attention=True))
  _, state = explicit.apply(params, tokens, mutable=["intermediates"])
  per_layer = state["intermediates"]
  return jnp.stack(
    [
      per_layer[f"h_{layer}"]["attn"]["attention_weights"][0]
      for layer in range(model.config.n_layer)
    ]
  )
