"""Character-level text data for language models (nanoGPT's shakespeare_char recipe).

A corpus is read from a local UTF-8 file (``text:PATH``) or from TFDS
(``tiny_shakespeare``), turned into a :class:`CharVocab` (sorted unique
characters of the training text, JSON-serialisable so a run directory alone
suffices to generate) and split 90/10 in order into train/val token arrays.
Training batches are random windows sampled on the device by the pure,
jittable :func:`sample_windows`; evaluation uses a fixed set of windows
(:func:`fixed_windows`) or every non-overlapping window (:func:`all_windows`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from dljax.data.tfds_source import read_tfds_split
from dljax.errors import DljaxError

TFDS_SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class CharVocab:
  """Maps each character of ``chars`` to its index."""

  chars: str

  @classmethod
  def from_text(cls, text: str) -> CharVocab:
    return cls("".join(sorted(set(text))))

  @property
  def size(self) -> int:
    return len(self.chars)

  @functools.cached_property
  def _index(self) -> dict[str, int]:
    return {char: index for index, char in enumerate(self.chars)}

  def encode(self, text: str) -> np.ndarray:
    """int32 token ids; raises ValueError naming any characters outside the vocabulary."""
    unknown = sorted(set(text) - self._index.keys())
    if unknown:
      raise DljaxError(f"characters not in the vocabulary: {''.join(unknown)!r} ({unknown})")
    return np.fromiter((self._index[char] for char in text), dtype=np.int32, count=len(text))

  def decode(self, tokens) -> str:
    return "".join(self.chars[int(token)] for token in np.asarray(tokens).reshape(-1))

  def to_json(self) -> str:
    return json.dumps({"type": "char", "chars": self.chars})

  @classmethod
  def from_json(cls, text: str) -> CharVocab:
    payload = json.loads(text)
    if payload.get("type") != "char" or not isinstance(payload.get("chars"), str):
      raise DljaxError(f"not a character vocabulary: {text[:200]!r}")
    return cls(payload["chars"])


@dataclasses.dataclass(frozen=True)
class TextDataset:
  """Train/val token arrays (int32, host memory) and their vocabulary."""

  vocab: CharVocab
  train: np.ndarray
  val: np.ndarray


def read_text_file(path: str | os.PathLike) -> str:
  """The whole file as text; clear errors for a missing, empty or non-UTF-8 file."""
  if not os.path.isfile(path):
    raise DljaxError(f"text corpus not found: {path} (give an existing UTF-8 file as text:PATH)")
  with open(path, "rb") as file:
    raw = file.read()
  try:
    text = raw.decode("utf-8")
  except UnicodeDecodeError as error:
    raise DljaxError(
      f"text corpus {path} is not valid UTF-8 (byte {error.start}: {error.reason})"
    ) from None
  if not text:
    raise DljaxError(f"text corpus {path} is empty")
  return text


def load_tfds_text(
  name: str = "tiny_shakespeare", data_dir: str | None = None, download: bool = False
) -> str:
  """The text of every split of a TFDS text dataset, joined in split order.

  tiny_shakespeare stores each split as one example whose 'text' feature is the whole split;
  train+validation+test in order is the original corpus, so the caller's 90/10 split matches
  nanoGPT's.
  """
  pieces = []
  for split in TFDS_SPLITS:
    for example in read_tfds_split(
      name,
      split,
      data_dir,
      download,
      offline="a local copy of the corpus: --config.dataset=text:PATH/TO/tinyshakespeare.txt",
    ):
      text = example["text"]
      pieces.append(text.decode("utf-8") if isinstance(text, bytes) else str(text))
  text = "".join(pieces)
  if not text:
    raise DljaxError(f"TFDS dataset {name!r} has no text")
  return text


def split_train_val(tokens: np.ndarray, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
  """First (1 - val_fraction) of the tokens for training, the rest for validation (nanoGPT)."""
  boundary = int(len(tokens) * (1.0 - val_fraction))
  return tokens[:boundary], tokens[boundary:]


def load_text_dataset(
  spec: str, *, data_dir: str | None = None, download: bool = False, val_fraction: float = 0.1
) -> TextDataset:
  """Load ``text:PATH``, ``tiny_shakespeare`` or ``tfds:NAME`` into a :class:`TextDataset`.

  Like nanoGPT, the vocabulary covers the whole corpus, so validation text
  never holds unknown characters.
  """
  if spec.startswith("text:"):
    text = read_text_file(spec[len("text:") :])
  elif spec.startswith("tfds:"):
    text = load_tfds_text(spec[len("tfds:") :], data_dir=data_dir, download=download)
  elif spec == "tiny_shakespeare":
    text = load_tfds_text(spec, data_dir=data_dir, download=download)
  else:
    raise DljaxError(
      f"unknown text dataset {spec!r}; expected 'text:PATH', 'tiny_shakespeare' or 'tfds:NAME'"
    )
  vocab = CharVocab.from_text(text)
  train, val = split_train_val(vocab.encode(text), val_fraction)
  return TextDataset(vocab, train, val)


def _check_window_fits(num_tokens: int, block_size: int) -> None:
  if block_size >= num_tokens:
    raise DljaxError(
      f"block_size {block_size} must be smaller than the number of tokens ({num_tokens}): "
      "a window needs block_size + 1 tokens"
    )


def sample_windows(tokens: jax.Array, key: jax.Array, batch_size: int, block_size: int):
  """Random (inputs, targets) windows, each (batch_size, block_size); targets are inputs shifted by one.

  Pure and jittable (shapes are static), so it can run inside the train step
  on a device-resident token array.
  """
  _check_window_fits(tokens.shape[0], block_size)
  starts = jax.random.randint(key, (batch_size,), 0, tokens.shape[0] - block_size)
  windows = jnp.asarray(tokens)[starts[:, None] + jnp.arange(block_size + 1)]
  return windows[:, :-1], windows[:, 1:]


def fixed_windows(tokens, num_windows: int, block_size: int, seed: int = 0):
  """A deterministic set of random windows (the same for a given seed), e.g. for a val-loss estimate."""
  return sample_windows(jnp.asarray(tokens), jax.random.key(seed), num_windows, block_size)


def next_token_loss(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Mean cross-entropy (nats/token) of ``logits`` (..., vocab) against integer ``targets``."""
  return per_token_loss(logits, targets).mean()


def per_token_loss(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Cross-entropy of each position (float32 whatever the compute dtype), shape of ``targets``.

  The one-hot product picks the same values as a gather (`jnp.take_along_axis`), but XLA fuses
  the two differently into the mean, which moves the logged losses in their last bits; the
  recorded results were measured with this form.
  """
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return -(jax.nn.one_hot(targets, logits.shape[-1], dtype=log_probs.dtype) * log_probs).sum(-1)


def all_windows(tokens, block_size: int) -> tuple[np.ndarray, np.ndarray]:
  """Every non-overlapping (inputs, targets) window of `tokens` (the full-val-set evaluation).

  The last (len - 1) % block_size tokens, too few for a whole window, are left out.
  """
  tokens = np.asarray(tokens)
  _check_window_fits(len(tokens), block_size)
  starts = np.arange((len(tokens) - 1) // block_size) * block_size
  windows = tokens[starts[:, None] + np.arange(block_size + 1)]
  return windows[:, :-1], windows[:, 1:]
