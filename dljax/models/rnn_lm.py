"""Multi-layer LSTM/GRU language model (Flax Linen).

Training runs each layer over the whole sequence (an LSTM with :meth:`LSTM.sequence`, whose
input projection is one matmul outside the scan; a GRU with ``nn.RNN``); generation
(:mod:`dljax.models.generation`, through :meth:`RNNLM.prefill` and :meth:`RNNLM.decode_step`)
calls the very same cells one token at a time on an explicit carry, so both paths share
parameters and agree exactly.
"""

from __future__ import annotations

from typing import Literal

import flax.linen as nn
import jax

from dljax.models.embedding import embed_tokens
from dljax.models.lstm import LSTM

_CELLS = {"lstm": LSTM, "gru": nn.GRUCell}


class RNNLM(nn.Module):
  """Embedding -> ``num_layers`` recurrent layers (dropout between them) -> Dense to vocabulary logits.

  The carry is a tuple with one cell carry per layer (LSTM: (c, h); GRU: h).
  """

  vocab_size: int
  hidden_size: int = 256
  num_layers: int = 2
  cell_type: Literal["lstm", "gru"] = "lstm"
  dropout: float = 0.0

  def setup(self):
    if self.cell_type not in _CELLS:
      raise ValueError(f"unknown cell_type {self.cell_type!r}; expected one of {sorted(_CELLS)}")
    self.embed = nn.Embed(self.vocab_size, self.hidden_size)
    cell_class = _CELLS[self.cell_type]
    self.cells = [
      cell_class(self.hidden_size, name=f"cell_{layer}") for layer in range(self.num_layers)
    ]
    self.gru_layers = [
      nn.RNN(cell, return_carry=True) for cell in self.cells if self.cell_type == "gru"
    ]
    self.drop = nn.Dropout(self.dropout)
    self.head = nn.Dense(self.vocab_size, name="head")

  def __call__(self, tokens, *, deterministic: bool = True, carry=None):
    """Logits (batch, length, vocab) for ``tokens`` (batch, length).

    With ``carry`` (e.g. from :meth:`init_carry`), the sequence continues from
    it and ``(logits, new_carry)`` is returned.
    """
    x = self.drop(embed_tokens(self.embed, tokens), deterministic=deterministic)
    initial = carry if carry is not None else self.init_carry(tokens.shape[0])
    new_carry = []
    for layer, layer_carry in enumerate(initial):
      if self.cell_type == "lstm":
        layer_carry, x = self.cells[layer].sequence(layer_carry, x)
      else:
        layer_carry, x = self.gru_layers[layer](x, initial_carry=layer_carry)
      new_carry.append(layer_carry)
      x = self.drop(x, deterministic=deterministic)
    logits = self.head(x)
    return logits if carry is None else (logits, tuple(new_carry))

  def prefill(self, prompt, num_tokens: int):
    """Runs ``prompt`` (batch, length) from the zero carry: (next-token logits, carry)."""
    del num_tokens  # a carry has no context limit to plan for
    logits, carry = self(prompt, carry=self.init_carry(prompt.shape[0]))
    return logits[:, -1], carry

  def decode_step(self, carry, token):
    """One deterministic step: ``token`` (batch,) int -> (logits (batch, vocab), new carry)."""
    x = embed_tokens(self.embed, token)
    new_carry = []
    for cell, layer_carry in zip(self.cells, carry):
      layer_carry, x = cell(layer_carry, x)
      new_carry.append(layer_carry)
    return self.head(x), tuple(new_carry)

  def init_carry(self, batch_size: int):
    """The zero carry for ``batch_size`` sequences."""
    # Zero-initialised carries ignore the rng.
    return tuple(
      cell.initialize_carry(jax.random.key(0), (batch_size, self.hidden_size))
      for cell in self.cells
    )
