"""Token embedding lookup shared by the language models (GPT, LSTM/GRU)."""

import flax.linen as nn
import jax


def embed_tokens(embedding: nn.Embed, tokens) -> jax.Array:
  """Embedding lookup as a one-hot matmul, in the embedding's compute dtype.

  The forward values are exactly `nn.Embed`'s gathered rows; the gradient becomes a dense matmul
  instead of a scatter-add, which for a character vocabulary costs no more than the tied output
  projection. Every recorded language-model result was measured with this form (a gather sums
  the gradients of repeated tokens in another order, which moves the numbers in their last bits).
  """
  dtype = embedding.dtype or embedding.embedding.dtype
  one_hot = jax.nn.one_hot(tokens, embedding.num_embeddings, dtype=dtype)
  return one_hot @ embedding.embedding.astype(dtype)
