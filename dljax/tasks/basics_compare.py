"""Optimizers, activations and initialisations compared: several MLPs trained side by side.

Every variant (`config.variants`: optimizer, learning rate, activation, kernel initialiser) is its
own `TrainState` in one state, and one jitted step updates all of them on the same batch
(`make_train_step([Update(variant, loss), ...])`): the curves differ only by the variant's
choices, never by data order, and one compilation serves them all. Variants with the same
architecture and initialiser start from the same weights. Each evaluation redraws
WORKDIR/comparison.png: training loss and test accuracy of every variant in one figure.
"""

import flax
import jax
import jax.numpy as jnp

from dljax.data import load_image_dataset
from dljax.data.device_feed import DeviceDataset
from dljax.errors import DljaxError
from dljax.evaluation import eval_batches, evaluate_batches
from dljax.experiment import Experiment, Hooks
from dljax.models import build_model
from dljax.optim import make_optimizer
from dljax.steps import Update, make_eval_step, make_train_step
from dljax.tasks.basics_plots import plot_comparison
from dljax.tasks.classification import classification_loss
from dljax.train_state import TrainState, init_model_state

VARIANT_FIELDS = (
  "optimizer",
  "learning_rate",
  "momentum",
  "weight_decay",
  "activation",
  "kernel_init",
)


def variants_state_class(names):
  """A `flax.struct` dataclass with one `TrainState` field per variant name."""
  return flax.struct.dataclass(
    type("Variants", (), {"__annotations__": {name: TrainState for name in names}})
  )


def variant_loss(name: str):
  """The classification loss of the variant in field `name` of the state."""

  def loss_fn(params, state, batch, rng, train):
    return classification_loss(params, getattr(state, name), batch, rng, train)

  return loss_fn


def _check_variants(config):
  if not config.variants:
    raise DljaxError("config.variants is empty; the comparison needs at least one variant")
  for name, variant in config.variants.items():
    if not name.isidentifier():
      raise DljaxError(
        f"variant name {name!r} must be a Python identifier (it names a state "
        f"field and prefixes the metrics); rename it in the config"
      )
    missing = [f for f in VARIANT_FIELDS if f not in variant]
    if missing:
      raise DljaxError(
        f"variant {name!r} lacks {', '.join(missing)}; give every variant "
        f"{', '.join(VARIANT_FIELDS)}"
      )


def build_experiment(config, mesh) -> Experiment:
  _check_variants(config)
  data = load_image_dataset(config.dataset)
  train_data = DeviceDataset(
    {"image": data.train_images, "label": data.train_labels}, config.batch_size, config.seed, mesh
  )
  num_steps = config.num_steps or config.num_epochs * train_data.steps_per_epoch
  names = list(config.variants)
  models, optimizers = {}, {}
  for name, variant in config.variants.items():
    model_config = {
      "name": "mlp",
      "hidden": config.hidden,
      "activation": variant.activation,
      "kernel_init": variant.kernel_init,
    }
    models[name] = build_model(model_config, num_classes=data.num_classes)
    optimizer = config.optimizer.copy_and_resolve_references()
    optimizer.update(
      {
        "name": variant.optimizer,
        "learning_rate": variant.learning_rate,
        "momentum": variant.momentum,
        "weight_decay": variant.weight_decay,
      }
    )
    optimizers[name] = make_optimizer(optimizer, num_steps)
  Variants = variants_state_class(names)
  example = jnp.zeros((1, *data.image_shape), jnp.float32)

  def init_state():
    key = jax.random.PRNGKey(config.seed)  # the same key for all: same init for same choices
    return Variants(**{n: init_model_state(models[n], optimizers[n], key, example) for n in names})

  eval_step = make_eval_step(classification_loss)  # on one variant's TrainState
  test_batches = eval_batches(
    {"image": data.test_images, "label": data.test_labels}, config.eval_batch_size, mesh
  )
  eval_rng = jax.random.PRNGKey(config.seed + 1)

  def evaluate(state):
    metrics = {}
    for name in names:
      result = evaluate_batches(eval_step, getattr(state, name), test_batches, eval_rng)
      metrics[f"{name}_test_accuracy"] = result["accuracy"]
      metrics[f"{name}_test_loss"] = result["loss"]
    return metrics

  return Experiment(
    init_state=init_state,
    train_step=make_train_step(
      [Update(name, variant_loss(name)) for name in names], train_data.batch
    ),
    feed=train_data.feed,
    evaluate=evaluate,
    num_steps=num_steps,
    identity={
      "dataset": config.dataset,
      "hidden": list(config.hidden),
      "variants": config.variants.to_dict(),
    },
    mesh=mesh,
    hooks=Hooks(after_eval=lambda state, step, workdir: plot_comparison(workdir, names)),
  )
