"""nanoGPT-style decoder-only Transformer language model (Flax Linen).

Mirrors Karpathy's nanoGPT ``model.py``: learned token and position embeddings,
pre-LayerNorm blocks with causal multi-head self-attention and a 4x GELU MLP,
a final LayerNorm and an output projection tied to the token embedding. The
same module also decodes incrementally with an explicit :class:`KVCache`
pytree, which keeps the whole sampling loop a single ``lax.scan``
(see :mod:`dljax.generation`).
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

# nanoGPT's initialisation: N(0, 0.02) for every weight matrix and embedding.
_weight_init = nn.initializers.normal(stddev=0.02)


@flax.struct.dataclass
class KVCache:
  """Keys and values of the positions decoded so far.

  ``keys``/``values`` have shape (n_layer, batch, block_size, n_head, head_dim);
  slots at or beyond ``length`` are unused and masked out of attention.
  """

  keys: jax.Array
  values: jax.Array
  length: jax.Array  # int32 scalar


def init_kv_cache(model: GPT, batch_size: int, dtype=None) -> KVCache:
  """An empty cache with room for ``model.block_size`` positions (default: the model's dtype)."""
  dtype = dtype or model.dtype
  shape = (model.n_layer, batch_size, model.block_size, model.n_head, model.n_embd // model.n_head)
  return KVCache(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype), jnp.zeros((), jnp.int32))


def embed_tokens(embedding: nn.Embed, tokens) -> jax.Array:
  """Embedding lookup as a one-hot matmul, in the embedding's compute dtype.

  Unlike ``nn.Embed``'s gather, this propagates a batch-sharded ``tokens``
  under an explicit-sharding mesh (a gather with sharded indices is rejected
  as ambiguous), and for character vocabularies it costs no more than the
  tied output projection.
  """
  dtype = embedding.dtype or embedding.embedding.dtype
  one_hot = jax.nn.one_hot(tokens, embedding.num_embeddings, dtype=dtype)
  return one_hot @ embedding.embedding.astype(dtype)


class CausalSelfAttention(nn.Module):
  """Multi-head causal self-attention, optionally reading/extending a layer's KV cache.

  With ``explicit_attention`` the softmax probabilities are computed with einsums
  and sown into the 'intermediates' collection as ``attention_weights`` (for
  plots); on CPU this is also ~10% faster per train step than the default,
  ``jax.nn.dot_product_attention``, which lets accelerators pick a fused
  kernel. Attention-probability dropout is not applied (the fused op has
  none); residual dropout is.
  """

  n_head: int
  dropout: float
  bias: bool
  n_layer: int
  explicit_attention: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, deterministic: bool, layer_cache=None, cache_length=None):
    batch, length, width = x.shape
    head_dim = width // self.n_head
    qkv = nn.Dense(
      3 * width, use_bias=self.bias, kernel_init=_weight_init, dtype=self.dtype, name="c_attn"
    )(x)
    qkv = qkv.reshape(batch, length, 3, self.n_head, head_dim)
    query, key, value = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]

    if layer_cache is None:
      mask = None
    else:
      cached_keys, cached_values = layer_cache
      key = jax.lax.dynamic_update_slice(cached_keys, key, (0, cache_length, 0, 0))
      value = jax.lax.dynamic_update_slice(cached_values, value, (0, cache_length, 0, 0))
      query_positions = cache_length + jnp.arange(length)
      key_positions = jnp.arange(key.shape[1])
      # Also hides the not-yet-written slots, which all lie after the queries.
      mask = (key_positions[None, :] <= query_positions[:, None])[None, None]
    new_layer_cache = (key, value)

    if self.explicit_attention:
      scores = jnp.einsum("bqhd,bkhd->bhqk", query, key) / math.sqrt(head_dim)
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
    # nanoGPT scales the init of residual projections by 1/sqrt(2 * n_layer).
    residual_init = nn.initializers.normal(stddev=0.02 / math.sqrt(2 * self.n_layer))
    y = nn.Dense(
      width, use_bias=self.bias, kernel_init=residual_init, dtype=self.dtype, name="c_proj"
    )(y)
    y = nn.Dropout(self.dropout)(y, deterministic=deterministic)
    return y, new_layer_cache


class MLP(nn.Module):
  """Position-wise 4x-wide feed-forward layer with exact (erf) GELU, as torch's nn.GELU."""

  dropout: float
  bias: bool
  n_layer: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, deterministic: bool):
    width = x.shape[-1]
    h = nn.Dense(
      4 * width, use_bias=self.bias, kernel_init=_weight_init, dtype=self.dtype, name="c_fc"
    )(x)
    h = nn.gelu(h, approximate=False)
    residual_init = nn.initializers.normal(stddev=0.02 / math.sqrt(2 * self.n_layer))
    h = nn.Dense(
      width, use_bias=self.bias, kernel_init=residual_init, dtype=self.dtype, name="c_proj"
    )(h)
    return nn.Dropout(self.dropout)(h, deterministic=deterministic)


class Block(nn.Module):
  """Pre-LayerNorm Transformer block."""

  n_head: int
  dropout: float
  bias: bool
  n_layer: int
  explicit_attention: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, deterministic: bool, layer_cache=None, cache_length=None):
    attention = CausalSelfAttention(
      self.n_head,
      self.dropout,
      self.bias,
      self.n_layer,
      self.explicit_attention,
      self.dtype,
      name="attn",
    )
    h, new_layer_cache = attention(
      nn.LayerNorm(epsilon=1e-5, use_bias=self.bias, dtype=self.dtype, name="ln_1")(x),
      deterministic,
      layer_cache,
      cache_length,
    )
    x = x + h
    mlp = MLP(self.dropout, self.bias, self.n_layer, self.dtype, name="mlp")
    ln_2 = nn.LayerNorm(epsilon=1e-5, use_bias=self.bias, dtype=self.dtype, name="ln_2")
    x = x + mlp(ln_2(x), deterministic)
    return x, new_layer_cache


class GPT(nn.Module):
  """Decoder-only Transformer over a token vocabulary.

  ``model.apply(params, tokens)`` returns logits (batch, length, vocab_size) for
  ``length <= block_size`` tokens at positions 0..length-1. With ``kv_cache``,
  the tokens are placed at positions ``kv_cache.length ...`` after the cached
  ones and ``(logits, extended_cache)`` is returned; the caller keeps
  ``kv_cache.length + length <= block_size``.
  Dropout needs ``deterministic=False`` and a 'dropout' rng.
  ``dtype`` is the compute dtype (activations, matmuls, logits); parameters stay float32, and
  LayerNorm statistics and the attention softmax are computed in float32.
  """

  vocab_size: int
  block_size: int
  n_layer: int = 4
  n_head: int = 4
  n_embd: int = 128
  dropout: float = 0.0
  bias: bool = True
  explicit_attention: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, tokens, *, deterministic: bool = True, kv_cache: KVCache | None = None):
    length = tokens.shape[1]
    if length > self.block_size:
      raise ValueError(f"sequence length {length} exceeds block_size {self.block_size}")
    if self.n_embd % self.n_head:
      raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")

    token_embedding = nn.Embed(
      self.vocab_size, self.n_embd, embedding_init=_weight_init, dtype=self.dtype, name="wte"
    )
    position_embedding = self.param("wpe", _weight_init, (self.block_size, self.n_embd))
    start = 0 if kv_cache is None else kv_cache.length
    positions = start + jnp.arange(length)
    x = embed_tokens(token_embedding, tokens) + position_embedding[positions].astype(self.dtype)
    x = nn.Dropout(self.dropout)(x, deterministic=deterministic)

    new_keys, new_values = [], []
    for layer in range(self.n_layer):
      layer_cache = None if kv_cache is None else (kv_cache.keys[layer], kv_cache.values[layer])
      block = Block(
        self.n_head,
        self.dropout,
        self.bias,
        self.n_layer,
        self.explicit_attention,
        self.dtype,
        name=f"h_{layer}",
      )
      x, (keys, values) = block(x, deterministic, layer_cache, start)
      new_keys.append(keys)
      new_values.append(values)

    x = nn.LayerNorm(epsilon=1e-5, use_bias=self.bias, dtype=self.dtype, name="ln_f")(x)
    logits = token_embedding.attend(x)
    if kv_cache is None:
      return logits
    return logits, KVCache(jnp.stack(new_keys), jnp.stack(new_values), kv_cache.length + length)


def attention_weights(model: GPT, params, tokens) -> jax.Array:
  """Attention probabilities of every layer, shape (n_layer, batch, n_head, length, length)."""
  _, state = model.clone(explicit_attention=True).apply(params, tokens, mutable=["intermediates"])
  per_layer = state["intermediates"]
  return jnp.stack(
    [per_layer[f"h_{layer}"]["attn"]["attention_weights"][0] for layer in range(model.n_layer)]
  )


def nanogpt_num_params(model: GPT, non_embedding: bool = True) -> int:
  """Parameter count by nanoGPT's formula (``GPT.get_num_params``).

  Like nanoGPT, ``non_embedding`` leaves out the position embedding; the token
  embedding is counted once because the output projection shares it.
  """
  width = model.n_embd
  layer_norm = 2 * width if model.bias else width
  biases = 9 * width if model.bias else 0  # c_attn 3C, attn c_proj C, c_fc 4C, mlp c_proj C
  per_block = 12 * width * width + biases + 2 * layer_norm
  total = (
    model.vocab_size * width + model.block_size * width + model.n_layer * per_block + layer_norm
  )
  return total - model.block_size * width if non_embedding else total
