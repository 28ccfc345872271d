"""Tests of the character-level text data: vocabulary, loaders, windows, evaluation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import mock_tfds_splits

from dljax.data import text as text_data
from dljax.errors import DljaxError


def test_vocab_round_trip_and_json():
  vocab = text_data.CharVocab.from_text("hello, world!\n")
  assert vocab.chars == "".join(sorted(set("hello, world!\n")))
  tokens = vocab.encode("world hello")
  assert tokens.dtype == np.int32
  assert vocab.decode(tokens) == "world hello"
  assert text_data.CharVocab.from_json(vocab.to_json()) == vocab


def test_encode_names_unknown_characters():
  vocab = text_data.CharVocab.from_text("abc")
  with pytest.raises(ValueError, match="'XZ'"):
    vocab.encode("aXbZ")


def test_from_json_rejects_other_payloads():
  with pytest.raises(ValueError, match="not a character vocabulary"):
    text_data.CharVocab.from_json('{"type": "bpe"}')


def test_text_file_loader_splits_in_order(tmp_path):
  path = tmp_path / "corpus.txt"
  content = "abcdefghij" * 10
  path.write_text(content, encoding="utf-8")
  dataset = text_data.load_text_dataset(f"text:{path}")
  assert dataset.vocab.size == 10
  assert len(dataset.train) == 90 and len(dataset.val) == 10
  assert dataset.vocab.decode(dataset.train) + dataset.vocab.decode(dataset.val) == content


@pytest.mark.parametrize(
  "content, error, message",
  [
    (None, DljaxError, "not found"),
    (b"", DljaxError, "empty"),
    (b"caf\xe9 latin-1", DljaxError, "not valid UTF-8"),
  ],
)
def test_text_file_loader_errors(tmp_path, content, error, message):
  path = tmp_path / "corpus.txt"
  if content is not None:
    path.write_bytes(content)
  with pytest.raises(error, match=message):
    text_data.load_text_dataset(f"text:{path}")


def test_unknown_dataset_spec():
  with pytest.raises(ValueError, match="text:PATH"):
    text_data.load_text_dataset("wikitext")


def test_tfds_text_joins_train_validation_and_test_in_order():
  texts = {"train": "First the train split. ", "validation": "Then validation, ", "test": "test."}
  with mock_tfds_splits(lambda split: [{"text": texts[split].encode()}]):
    dataset = text_data.load_text_dataset("tiny_shakespeare")
  joined = dataset.vocab.decode(dataset.train) + dataset.vocab.decode(dataset.val)
  assert joined == "".join(texts.values())


def test_tfds_loader_unavailable_names_offline_alternative(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises(DljaxError, match="(?s)not prepared.*text:PATH"):
    text_data.load_text_dataset("tiny_shakespeare", data_dir=str(tmp_path), download=False)


def test_sample_windows_targets_are_shifted_inputs():
  tokens = jnp.arange(100, dtype=jnp.int32)
  sample = jax.jit(text_data.sample_windows, static_argnums=(2, 3))
  inputs, targets = sample(tokens, jax.random.key(0), 8, 16)
  assert inputs.shape == targets.shape == (8, 16)
  np.testing.assert_array_equal(targets, inputs + 1)
  np.testing.assert_array_equal(inputs[:, 1:], inputs[:, :-1] + 1)


def test_sample_windows_rejects_block_size_too_large():
  with pytest.raises(ValueError, match="block_size 10"):
    text_data.sample_windows(jnp.arange(10), jax.random.key(0), 2, 10)


def test_fixed_windows_are_deterministic():
  tokens = np.arange(1000, dtype=np.int32)
  first = text_data.fixed_windows(tokens, 4, 8, seed=3)
  second = text_data.fixed_windows(tokens, 4, 8, seed=3)
  np.testing.assert_array_equal(first[0], second[0])


def test_all_windows_cover_the_tokens_without_overlap():
  tokens = np.arange(23, dtype=np.int32)
  inputs, targets = text_data.all_windows(tokens, 4)
  # 5 windows of 4 cover tokens 0..20; the last 2 tokens cannot fill a window.
  assert inputs.shape == targets.shape == (5, 4)
  np.testing.assert_array_equal(inputs.reshape(-1), np.arange(20))
  np.testing.assert_array_equal(targets, inputs + 1)
