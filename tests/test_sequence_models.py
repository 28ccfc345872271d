"""Tests of the GPT and RNN language models and of sampling from them."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dljax.data import text as text_data
from dljax.models.generation import generate
from dljax.models.gpt import GPT, GPTConfig, attention_weights, init_kv_cache
from dljax.models.lstm import LSTM
from dljax.models.rnn_lm import RNNLM

VOCAB = 13


def tiny_gpt(block_size=8, **overrides):
  fields = {"vocab_size": VOCAB, "block_size": block_size, "n_layer": 2, "n_head": 2, "n_embd": 16}
  return GPT(GPTConfig(**{**fields, **overrides}))


def with_fields(model, **fields):
  """`model` with some of its config's fields replaced."""
  return model.clone(config=dataclasses.replace(model.config, **fields))


def init(model, length=8, seed=0, scale=1.0):
  params = model.init(jax.random.key(seed), jnp.zeros((1, length), jnp.int32))
  # Untrained nets predict nearly uniform logits; scaling makes greedy decoding non-trivial.
  return jax.tree.map(lambda x: x * scale, params)


def random_tokens(shape, seed=1):
  return jax.random.randint(jax.random.key(seed), shape, 0, VOCAB)


def count(params):
  return sum(x.size for x in jax.tree.leaves(params))


# The GPT computes attention two ways (jax.nn.dot_product_attention, or einsums that expose the
# weights); each has its own masking code, with and without a KV cache.
BOTH_ATTENTIONS = pytest.mark.parametrize(
  "explicit_attention", [False, True], ids=["fused", "explicit"]
)


def nanogpt_num_params(config: GPTConfig, non_embedding: bool = True) -> int:
  """Parameter count by nanoGPT's formula (``GPT.get_num_params``).

  Like nanoGPT, ``non_embedding`` leaves out the position embedding; the token
  embedding is counted once because the output projection shares it.
  """
  width = config.n_embd
  layer_norm = 2 * width if config.bias else width
  biases = 9 * width if config.bias else 0  # c_attn 3C, attn c_proj C, c_fc 4C, mlp c_proj C
  per_block = 12 * width * width + biases + 2 * layer_norm
  total = (
    config.vocab_size * width + config.block_size * width + config.n_layer * per_block + layer_norm
  )
  return total - config.block_size * width if non_embedding else total


@pytest.mark.parametrize("bias", [True, False])
def test_gpt_parameter_count_matches_nanogpt_formula(bias):
  config = GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, bias=bias)
  model = GPT(config)
  params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 64), jnp.int32))
  assert count(params) == nanogpt_num_params(config, non_embedding=False)
  if bias:  # nanoGPT prints "number of parameters: 0.80M" for shakespeare_char on CPU
    assert nanogpt_num_params(config) == 801_664


@BOTH_ATTENTIONS
def test_gpt_is_causal(explicit_attention):
  model = tiny_gpt(explicit_attention=explicit_attention)
  params = init(model)
  tokens = random_tokens((2, 8))
  changed = tokens.at[:, 5].set((tokens[:, 5] + 1) % VOCAB)
  forward = jax.jit(model.apply)
  before, after = forward(params, tokens), forward(params, changed)
  np.testing.assert_allclose(before[:, :5], after[:, :5], atol=1e-6)
  assert not np.allclose(before[:, 5:], after[:, 5:])


def test_gpt_explicit_attention_matches_fused_and_exposes_weights():
  model = tiny_gpt()
  params = init(model)
  tokens = random_tokens((2, 8))
  explicit = with_fields(model, explicit_attention=True).apply(params, tokens)
  np.testing.assert_allclose(model.apply(params, tokens), explicit, atol=1e-5)
  weights = attention_weights(model, params, tokens)
  assert weights.shape == (2, 2, 2, 8, 8)
  np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
  assert float(jnp.abs(jnp.triu(weights, k=1)).max()) == 0.0


@BOTH_ATTENTIONS
def test_gpt_kv_cache_logits_match_full_forward(explicit_attention):
  model = tiny_gpt(explicit_attention=explicit_attention)
  params = init(model)
  tokens = random_tokens((2, 8))
  forward = jax.jit(model.apply)
  cache = init_kv_cache(model.config, 2)
  prefix_logits, cache = forward(params, tokens[:, :5], kv_cache=cache)
  pieces = [prefix_logits]
  for position in range(5, 8):
    logits, cache = forward(params, tokens[:, position : position + 1], kv_cache=cache)
    pieces.append(logits)
  np.testing.assert_allclose(jnp.concatenate(pieces, axis=1), forward(params, tokens), atol=1e-5)


def greedy_by_full_forward(model, params, prompt, num_tokens):
  """nanoGPT's generate: recompute the whole (cropped) context every step."""
  forward = jax.jit(model.apply)  # a program a length: op by op, every op compiles a length
  sequence = jnp.asarray(prompt)
  for _ in range(num_tokens):
    logits = forward(params, sequence[:, -model.config.block_size :])[:, -1]
    sequence = jnp.concatenate(
      [sequence, jnp.argmax(logits, -1)[:, None].astype(sequence.dtype)], axis=1
    )
  return sequence[:, prompt.shape[1] :]


@BOTH_ATTENTIONS
@pytest.mark.parametrize("num_tokens", [5, 14], ids=["within_block", "sliding_window"])
def test_gpt_greedy_generation_with_cache_matches_full_forward(num_tokens, explicit_attention):
  model = tiny_gpt(explicit_attention=explicit_attention)
  params = init(model, seed=2, scale=10.0)
  prompt = random_tokens((2, 3))
  cached = generate(model, params, prompt, num_tokens, jax.random.key(0), temperature=0.0)
  expected = greedy_by_full_forward(model, params, prompt, num_tokens)
  np.testing.assert_array_equal(cached, expected)
  assert len(np.unique(np.asarray(expected))) > 1


def test_gpt_crops_long_prompt_to_block_size():
  model = tiny_gpt()
  params = init(model, seed=2, scale=10.0)
  prompt = random_tokens((1, 12))
  generated = generate(model, params, prompt, 4, jax.random.key(0), temperature=0.0)
  np.testing.assert_array_equal(generated, greedy_by_full_forward(model, params, prompt, 4))


@pytest.mark.parametrize("cell_type", ["lstm", "gru"])
def test_rnn_stepwise_matches_scanned(cell_type):
  model = RNNLM(VOCAB, hidden_size=16, num_layers=2, cell_type=cell_type)
  params = init(model)
  tokens = random_tokens((2, 7))
  scanned = model.apply(params, tokens)
  carry = model.apply(params, 2, method=RNNLM.init_carry)
  stepped = []
  for position in range(7):
    logits, carry = model.apply(params, carry, tokens[:, position], method=RNNLM.decode_step)
    stepped.append(logits)
  np.testing.assert_allclose(jnp.stack(stepped, axis=1), scanned, atol=1e-5)
  # Continuing a sequence from a carry equals running it in one go.
  initial = model.apply(params, 2, method=RNNLM.init_carry)
  first, carry = model.apply(params, tokens[:, :3], carry=initial)
  rest, _ = model.apply(params, tokens[:, 3:], carry=carry)
  np.testing.assert_allclose(jnp.concatenate([first, rest], axis=1), scanned, atol=1e-5)


class FlaxLSTM(nn.Module):
  """The reference: Flax's own LSTM cell run over the sequence by nn.RNN."""

  @nn.compact
  def __call__(self, xs, carry):
    return nn.RNN(nn.OptimizedLSTMCell(16, name="cell"), return_carry=True)(xs, initial_carry=carry)


class HoistedLSTM(nn.Module):
  @nn.compact
  def __call__(self, xs, carry):
    return LSTM(16, name="cell").sequence(carry, xs)


def test_lstm_has_flax_parameters_values_and_gradients():
  """dljax's LSTM (hoisted input projection, fused gates, hand-written backward) is Flax's
  OptimizedLSTMCell: the same parameter tree from the same key, the same outputs and final
  carry, and the same gradients for the parameters, the inputs and the initial carry."""
  xs = jax.random.normal(jax.random.key(1), (3, 9, 5))
  carry = tuple(jax.random.normal(jax.random.key(k), (3, 16)) for k in (2, 3))
  params = FlaxLSTM().init(jax.random.key(0), xs, carry)
  ours = HoistedLSTM().init(jax.random.key(0), xs, carry)
  jax.tree.map(np.testing.assert_array_equal, params, ours)

  def loss(model, params, xs, carry):
    (c, h), outputs = model.apply(params, xs, carry)
    return jnp.sum(jnp.sin(outputs)) + jnp.sum(c**2) + jnp.sum(h)

  for model_output, our_output in zip(
    jax.tree.leaves(FlaxLSTM().apply(params, xs, carry)),
    jax.tree.leaves(HoistedLSTM().apply(params, xs, carry)),
  ):
    np.testing.assert_allclose(our_output, model_output, atol=1e-6)
  reference = jax.grad(loss, argnums=(1, 2, 3))(FlaxLSTM(), params, xs, carry)
  gradients = jax.grad(loss, argnums=(1, 2, 3))(HoistedLSTM(), params, xs, carry)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), gradients, reference)


class Bigram(nn.Module):
  """A model generation.py has never heard of: next-token logits from the last token alone."""

  vocab_size: int

  @nn.compact
  def __call__(self, tokens):
    return nn.Embed(self.vocab_size, self.vocab_size)(tokens)

  def prefill(self, prompt, num_tokens):
    return self(prompt)[:, -1], jnp.zeros((), jnp.int32)  # state: tokens fed so far

  def decode_step(self, fed, token):
    return self(token), fed + 1


def test_a_new_model_with_the_protocol_samples_through_generate():
  model = Bigram(VOCAB)
  params = init(model, seed=2, scale=10.0)
  table = params["params"]["Embed_0"]["embedding"]
  prompt = random_tokens((2, 3))
  expected, token = [], prompt[:, -1]
  for _ in range(6):
    token = jnp.argmax(table[token], -1)
    expected.append(token)
  generated = generate(model, params, prompt, 6, jax.random.key(0), temperature=0.0)
  np.testing.assert_array_equal(generated, jnp.stack(expected, axis=1))
  with pytest.raises(TypeError, match="prefill and decode_step"):
    generate(nn.Dense(VOCAB), {}, prompt, 6, jax.random.key(0))


def test_rnn_greedy_generation_matches_full_forward():
  model = RNNLM(VOCAB, hidden_size=16, num_layers=2)
  params = init(model, seed=2, scale=10.0)
  prompt = random_tokens((2, 4))
  sequence = prompt
  for _ in range(6):
    next_token = jnp.argmax(model.apply(params, sequence)[:, -1], -1).astype(sequence.dtype)
    sequence = jnp.concatenate([sequence, next_token[:, None]], axis=1)
  generated = generate(model, params, prompt, 6, jax.random.key(0), temperature=0.0)
  np.testing.assert_array_equal(generated, sequence[:, 4:])


def test_sampling_filters():
  model = tiny_gpt()
  params = init(model, seed=2, scale=10.0)
  prompt = random_tokens((3,))
  greedy = generate(model, params, prompt, 10, jax.random.key(0), temperature=0.0)
  assert greedy.shape == (10,)
  # top_k=1 and a tiny nucleus leave only the most likely token.
  np.testing.assert_array_equal(
    generate(model, params, prompt, 10, jax.random.key(1), top_k=1), greedy
  )
  np.testing.assert_array_equal(
    generate(model, params, prompt, 10, jax.random.key(2), top_p=1e-6), greedy
  )


NUM_SAMPLES = 4000  # per-token frequency error below 0.008 (one standard deviation)


@pytest.fixture(scope="module")
def next_token_model():
  """A GPT, a prompt and the logits of its next token (a spread distribution: 0.24 at most)."""
  model = tiny_gpt(n_layer=1)
  params = init(model, seed=0, scale=3.0)
  prompt = random_tokens((3,))
  return model, params, prompt, np.asarray(model.apply(params, prompt[None]))[0, -1]


def sampled_frequencies(model, params, prompt, **options):
  """How often `generate` picks each token next, over NUM_SAMPLES copies of `prompt`."""
  prompts = jnp.broadcast_to(prompt, (NUM_SAMPLES, len(prompt)))
  tokens = generate(model, params, prompts, 1, jax.random.key(0), **options)
  return np.bincount(np.asarray(tokens[:, 0]), minlength=VOCAB) / NUM_SAMPLES


def filtered_distribution(logits, temperature=1.0, top_k=None, top_p=None):
  """The distribution sampled from, by definition: softmax(logits / T) restricted to the k most
  likely tokens, then to the smallest most-likely set whose probability reaches top_p."""
  logits = np.asarray(logits, np.float64) / temperature
  order = np.argsort(-logits)
  keep = np.zeros(len(logits), bool)
  keep[order[: top_k or len(logits)]] = True
  if top_p is not None:
    probabilities = np.where(keep, np.exp(logits - logits.max()), 0.0)
    probabilities /= probabilities.sum()
    mass_before = np.cumsum(probabilities[order]) - probabilities[order]
    keep[order[mass_before >= top_p]] = False
  probabilities = np.where(keep, np.exp(logits - logits.max()), 0.0)
  return probabilities / probabilities.sum()


def entropy(distribution):
  nonzero = distribution[distribution > 0]
  return -float(np.sum(nonzero * np.log(nonzero)))


def test_temperature_scales_the_sampling_distribution(next_token_model):
  model, params, prompt, logits = next_token_model
  entropies = []
  for temperature in (0.5, 1.0, 2.0):
    frequencies = sampled_frequencies(model, params, prompt, temperature=temperature)
    np.testing.assert_allclose(frequencies, filtered_distribution(logits, temperature), atol=0.03)
    entropies.append(entropy(frequencies))
  # Entropy in nats of softmax(logits / T): 1.78, 2.32 and 2.50.
  assert entropies[0] + 0.2 < entropies[1] < entropies[2] - 0.1


@pytest.mark.parametrize(
  "options",
  [{"top_k": 4}, {"top_p": 0.52}, {"temperature": 1.5, "top_k": 6, "top_p": 0.8}],
  ids=["top_k", "top_p", "all"],
)
def test_top_k_and_nucleus_sample_exactly_their_support(next_token_model, options):
  model, params, prompt, logits = next_token_model
  expected = filtered_distribution(logits, **options)
  assert 1 < np.count_nonzero(expected) < VOCAB and expected[expected > 0].min() > 0.05
  frequencies = sampled_frequencies(model, params, prompt, **options)
  np.testing.assert_array_equal(frequencies > 0, expected > 0)
  np.testing.assert_allclose(frequencies, expected, atol=0.03)


@pytest.mark.parametrize(
  "kwargs, message",
  [
    ({"temperature": -1.0}, "temperature"),
    ({"temperature": float("nan")}, "temperature"),
    ({"temperature": float("inf")}, "temperature"),
    ({"top_k": 0}, "top_k"),
    ({"top_p": 1.5}, "top_p"),
    ({"top_p": float("nan")}, "top_p"),
  ],
)
def test_generate_rejects_bad_arguments(kwargs, message):
  model = tiny_gpt()
  params = init(model)
  with pytest.raises(ValueError, match=message):
    generate(model, params, jnp.array([1, 2]), 3, jax.random.key(0), **kwargs)
  with pytest.raises(ValueError, match="non-empty"):
    generate(model, params, jnp.zeros((0,), jnp.int32), 3, jax.random.key(0))


def test_prompt_outside_vocabulary_names_characters():
  vocab = text_data.CharVocab.from_text("to be or not to be")
  with pytest.raises(ValueError, match="'!Q'"):
    vocab.encode("to be! Q")


def test_gpt_rejects_sequence_longer_than_block_size():
  model = tiny_gpt()
  with pytest.raises(ValueError, match="block_size"):
    model.init(jax.random.key(0), jnp.zeros((1, 9), jnp.int32))


OVERFIT_TEXT = "first citizen: before we proceed any further, hear me speak.\n"


@pytest.mark.parametrize(
  "model",
  [
    lambda vocab_size: GPT(GPTConfig(vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=32)),
    lambda vocab_size: RNNLM(vocab_size, hidden_size=64, num_layers=1),
  ],
  ids=["gpt", "lstm"],
)
def test_tiny_model_overfits_short_text(model):
  vocab = text_data.CharVocab.from_text(OVERFIT_TEXT)
  model = model(vocab.size)
  tokens = jnp.asarray(vocab.encode(OVERFIT_TEXT * 4))
  params = model.init(jax.random.key(0), jnp.zeros((1, 16), jnp.int32))
  optimizer = optax.adam(1e-2)
  opt_state = optimizer.init(params)

  @jax.jit
  def train_step(params, opt_state, step):
    inputs, targets = text_data.sample_windows(
      tokens, jax.random.fold_in(jax.random.key(1), step), 16, 16
    )

    def loss_fn(params):
      return text_data.next_token_loss(model.apply(params, inputs), targets)

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state)
    return optax.apply_updates(params, updates), opt_state, loss

  for step in range(200):
    params, opt_state, loss = train_step(params, opt_state, step)
  # Uniform guessing is log(vocab) ~ 3; the text is memorised up to its first characters.
  assert float(loss) < 0.3
