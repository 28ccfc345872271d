"""Image classification: the vision chapter's task (MLP, CNN, ResNet on MNIST, CIFAR...)."""

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from dljax import parallel
from dljax.data import load_image_dataset
from dljax.data.augment import augment
from dljax.data.device_feed import DeviceDataset
from dljax.loop import Experiment
from dljax.models import build_model
from dljax.optim import make_optimizer
from dljax.steps import make_eval_step, make_train_step
from dljax.train_state import init_model_state


def model_kwargs(config) -> dict:
  return {k: v for k, v in config.model.items() if k != "name"}


def classification_loss(params, state, batch, rng, train):
  """Softmax cross-entropy; updates BatchNorm statistics (the mutable collections) in training."""
  variables = state.variables(params)
  rngs = {"dropout": rng} if rng is not None else None
  if train and state.mutable:
    logits, mutable = state.apply_fn(variables, batch["image"], train=True, rngs=rngs,
                                     mutable=list(state.mutable))
  else:
    logits, mutable = state.apply_fn(variables, batch["image"], train=train, rngs=rngs), None
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
  accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
  return loss, ({"accuracy": accuracy}, mutable)


def eval_batches(images, labels, batch_size: int, mesh) -> list[dict]:
  """The test set cut into device-resident batches, split over the mesh where sizes allow."""
  batches = []
  for start in range(0, len(images), batch_size):
    batch = {"image": images[start:start + batch_size], "label": labels[start:start + batch_size]}
    spec = P(parallel.DATA_AXIS) if len(batch["label"]) % mesh.size == 0 else P()
    batches.append(jax.device_put(batch, NamedSharding(mesh, spec)))
  return batches


def evaluate_batches(eval_step, state, batches) -> dict[str, float]:
  """Example-weighted means of `eval_step` over `batches`, fetched from the device once."""
  sums = None
  for batch in batches:
    n = batch["label"].shape[0]
    metrics = jax.tree.map(lambda m: m * n, eval_step(state, batch))
    sums = metrics if sums is None else jax.tree.map(jnp.add, sums, metrics)
    jax.block_until_ready(sums)  # one batch in flight: see parallel.needs_bounded_dispatch
  total = sum(b["label"].shape[0] for b in batches)
  return {k: float(v) / total for k, v in jax.device_get(sums).items()}


def build_experiment(config, mesh) -> Experiment:
  data = load_image_dataset(config.dataset, config.data_dir or None, config.tfds_download)
  model = build_model(config.model.name, num_classes=data.num_classes, **model_kwargs(config))
  train_data = DeviceDataset({"image": data.train_images, "label": data.train_labels},
                             config.batch_size, config.seed, mesh)
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
  test_batches = eval_batches(data.test_images, data.test_labels, config.eval_batch_size, mesh)

  def evaluate(state):
    metrics = evaluate_batches(eval_step, state, test_batches)
    return {"test_accuracy": metrics["accuracy"], "test_loss": metrics["loss"]}

  return Experiment(
      init_state=init_state,
      train_step=make_train_step(classification_loss, batch_fn),
      feed=train_data.feed,
      evaluate=evaluate,
      num_steps=num_steps,
      identity={"task": "classification", "dataset": config.dataset, "model": config.model.to_dict()},
      mesh=mesh)
