"""Character-level language modelling: the sequence chapter's task (GPT, LSTM, GRU).

Training windows are sampled inside the jitted step from the training tokens held on the device;
the key of step `s` is `fold_in(data_key, s)`, so a resumed run sees the same batches. Evaluation
is the mean next-character loss (nats) over a fixed set of validation windows (or all of them).
Each checkpoint carries the vocabulary and the model's constructor arguments, so
`experiments.generate` needs nothing but the run directory.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np

from dljax import parallel
from dljax.data.text import (
  CharVocab,
  all_windows,
  fixed_windows,
  load_text_dataset,
  next_token_loss,
  sample_windows,
)
from dljax.errors import DljaxError, bad_value
from dljax.evaluation import eval_batches, evaluate_batches
from dljax.experiment import Experiment, Hooks
from dljax.models import build_model, model_spec
from dljax.models.generation import generate
from dljax.models.precision import dtype_kwargs
from dljax.optim import make_optimizer
from dljax.steps import make_eval_step, make_train_step
from dljax.tasks import SampleOptions
from dljax.train_state import init_model_state


def lm_loss(params, state, batch, rng, train):
  rngs = {"dropout": rng} if rng is not None else None
  logits = state.apply_fn({"params": params}, batch["inputs"], deterministic=not train, rngs=rngs)
  return next_token_loss(logits, batch["targets"]), ({}, None)


def language_model_spec(config, vocab_size: int) -> dict:
  """The model's registry name and constructor fields, as saved with every checkpoint."""
  return model_spec(
    config.model,
    vocab_size=vocab_size,
    block_size=config.block_size,
    **dtype_kwargs(config.model.name, config.dtype),
  )


def sample_text(
  model,
  params,
  vocab: CharVocab,
  prompt: str,
  num_tokens: int,
  seed: int,
  temperature: float,
  top_k: int,
  top_p: float,
) -> str:
  """`prompt` continued by `num_tokens` sampled characters (top_k/top_p 0: off)."""
  try:
    prompt_tokens = vocab.encode(prompt)
  except ValueError as e:
    raise DljaxError(
      f"the prompt cannot be encoded: {e}; use only characters of the training text"
    ) from None
  if not len(prompt_tokens):
    raise DljaxError("the prompt is empty; give at least one character (e.g. --prompt='\\n')")
  tokens = generate(
    model,
    {"params": params},
    prompt_tokens,
    num_tokens,
    jax.random.PRNGKey(seed),
    temperature,
    top_k or None,
    top_p or None,
  )
  return prompt + vocab.decode(tokens)


def sample(state_tree: dict, meta: dict, options: SampleOptions) -> str:
  """The task's sampling hook (dljax.tasks): `options.prompt` continued by `options.num_tokens`
  sampled characters, given a restored checkpoint tree and its meta (vocabulary, model spec)."""
  if options.num is not None:
    raise DljaxError(
      "--num asks for images, but a language_model run samples text; drop --num (text: "
      "--num_tokens) or point --workdir at an image model's run (VAE, GAN)"
    )
  return sample_text(
    build_model(meta["model"]),
    state_tree["params"],
    CharVocab.from_json(meta["vocab"]),
    options.prompt,
    options.num_tokens,
    options.seed,
    options.temperature,
    options.top_k,
    options.top_p,
  )


def build_experiment(config, mesh) -> Experiment:
  data = load_text_dataset(
    config.dataset, data_dir=config.data_dir or None, download=config.tfds_download
  )
  for name, valid, rule in (
    ("block_size", config.block_size >= 1, "at least 1"),
    ("eval_windows", config.eval_windows >= 1, "at least 1"),
    ("sample_tokens", config.sample_tokens >= 0, "at least 0 (0: no samples)"),
    ("sample_temperature", config.sample_temperature >= 0, "at least 0 (0: greedy)"),
    ("sample_top_k", config.sample_top_k >= 0, "at least 0 (0: every character)"),
  ):
    if not valid:
      raise bad_value(name, config[name], rule)
  for split, tokens in (("training", data.train), ("validation", data.val)):
    if config.block_size >= len(tokens):
      raise DljaxError(
        f"block_size={config.block_size} needs more than {len(tokens)} {split} "
        f"characters; lower --config.block_size or use a longer text"
      )
  parallel.check_batch_divisible(config.batch_size, mesh)
  spec = language_model_spec(config, data.vocab.size)
  model = build_model(spec)
  tx = make_optimizer(config.optimizer, config.num_steps)

  def init_state():
    return init_model_state(
      model, tx, jax.random.PRNGKey(config.seed), jnp.zeros((1, config.block_size), jnp.int32)
    )

  state_sharding = parallel.state_sharding(config.state_sharding, init_state, mesh)
  feed = parallel.replicate(
    {"tokens": data.train, "key": jax.random.PRNGKey(config.seed + 1)}, mesh
  )

  def batch_fn(feed, step):
    key = jax.random.fold_in(feed["key"], step)
    inputs, targets = sample_windows(feed["tokens"], key, config.batch_size, config.block_size)
    return {"inputs": parallel.split_batch(inputs), "targets": parallel.split_batch(targets)}

  if config.eval_full_val:
    inputs, targets = all_windows(data.val, config.block_size)
  else:
    inputs, targets = map(
      np.asarray, fixed_windows(data.val, config.eval_windows, config.block_size, seed=config.seed)
    )
  val_batches = eval_batches({"inputs": inputs, "targets": targets}, config.eval_batch_size, mesh)
  eval_step = make_eval_step(lm_loss)
  eval_rng = jax.random.PRNGKey(config.seed + 2)

  def evaluate(state):
    return {"val_loss": evaluate_batches(eval_step, state, val_batches, eval_rng)["loss"]}

  def write_sample(state, step, workdir):
    if not config.sample_tokens:
      return
    text = sample_text(
      model,
      state.params,
      data.vocab,
      config.sample_prompt,
      config.sample_tokens,
      config.seed,
      config.sample_temperature,
      config.sample_top_k,
      0.0,
    )
    os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
    with open(os.path.join(workdir, "samples", f"step_{step:06d}.txt"), "w") as f:
      f.write(text)

  return Experiment(
    init_state=init_state,
    train_step=make_train_step(
      lm_loss, batch_fn, steps_per_call=config.steps_per_call, state_sharding=state_sharding
    ),
    feed=lambda step: feed,
    evaluate=evaluate,
    num_steps=config.num_steps,
    identity={"model": spec},
    mesh=mesh,
    meta={"vocab": data.vocab.to_json(), "model": spec},
    hooks=Hooks(after_eval=write_sample),
  )
