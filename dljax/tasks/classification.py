"""Image classification: the vision chapter's task (MLP, CNN, ResNet on MNIST, CIFAR...)."""

import jax
import jax.numpy as jnp
import optax

from dljax.data import load_image_dataset
from dljax.data.augment import augment
from dljax.data.placement import device_dataset, process_shard
from dljax.errors import DljaxError, bad_value
from dljax.evaluation import eval_batches, evaluate_batches
from dljax.experiment import Experiment
from dljax.models import build_model
from dljax.models.precision import dtype_kwargs
from dljax.optim import make_optimizer
from dljax.steps import make_eval_step, make_train_step
from dljax.train_state import init_model_state


def classification_loss(params, state, batch, rng, train):
  """Softmax cross-entropy in at least float32 (a bf16 model's logits go up, a float64 check's
  stay); updates BatchNorm statistics (the mutable collections) in training."""
  variables = state.variables(params)
  rngs = {"dropout": rng} if rng is not None else None
  if train and state.mutable:
    logits, mutable = state.apply_fn(
      variables, batch["image"], train=True, rngs=rngs, mutable=list(state.mutable)
    )
  else:
    logits, mutable = state.apply_fn(variables, batch["image"], train=train, rngs=rngs), None
  logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))  # bf16 up, f64 kept
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
  accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
  return loss, ({"accuracy": accuracy}, mutable)


def build_experiment(config, mesh) -> Experiment:
  shard = process_shard(config.data_placement)
  data = load_image_dataset(config.dataset, config.data_dir or None, config.tfds_download, shard)
  if data.train_labels is None:
    raise DljaxError(
      f"dataset {config.dataset!r} has no labels to classify; use a labelled one "
      f"(--config.dataset=mnist5k, mnist, fashion_mnist, cifar10)"
    )
  if config.augment.crop_pad < 0:
    raise bad_value("augment.crop_pad", config.augment.crop_pad, "at least 0 (0: no cropping)")
  model = build_model(
    config.model, num_classes=data.num_classes, **dtype_kwargs(config.model.name, config.dtype)
  )
  train_data = device_dataset(
    {"image": data.train_images, "label": data.train_labels},
    config.batch_size,
    config.seed,
    mesh,
    shard,
  )
  num_steps = config.num_steps or config.num_epochs * train_data.steps_per_epoch
  tx = make_optimizer(config.optimizer, num_steps)
  example = jnp.zeros((1, *data.image_shape), jnp.float32)

  def init_state():
    return init_model_state(model, tx, jax.random.PRNGKey(config.seed), example)

  def batch_fn(feed, step):
    batch = train_data.batch(feed, step)
    if config.augment.crop_pad or config.augment.flip:
      key = jax.random.fold_in(feed.key, step)
      batch["image"] = augment(key, batch["image"], config.augment.crop_pad, config.augment.flip)
    return batch

  eval_step = make_eval_step(classification_loss)
  eval_rng = jax.random.PRNGKey(config.seed + 1)
  test_batches = eval_batches(
    {"image": data.test_images, "label": data.test_labels}, config.eval_batch_size, mesh
  )

  def evaluate(state):
    metrics = evaluate_batches(eval_step, state, test_batches, eval_rng)
    return {"test_accuracy": metrics["accuracy"], "test_loss": metrics["loss"]}

  return Experiment(
    init_state=init_state,
    train_step=make_train_step(classification_loss, batch_fn, steps_per_call=config.steps_per_call),
    feed=train_data.feed,
    evaluate=evaluate,
    num_steps=num_steps,
    identity={"dataset": config.dataset, "model": config.model.to_dict()},
    mesh=mesh,
  )
