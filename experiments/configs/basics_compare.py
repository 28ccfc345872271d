"""SGD, momentum, Adam and AdamW, and activation / initialisation choices, on `mnist5k`.

  python -m experiments.train --config experiments/configs/basics_compare.py --workdir runs/basics_compare

One jitted step trains every variant below on the same batch (dljax.tasks.basics_compare) and
WORKDIR/comparison.png shows their training loss and test accuracy. The optimizer variants share
ReLU + He initialisation; the others change one choice of `adam`. A variant's fields can be
overridden (--config.variants.sgd.learning_rate=0.2); new variants go into `get_config`.
Variant `smoke` runs in seconds (tests).
"""

import ml_collections

from dljax.config import apply_variant, base_config, make_smoke


def variant(
  optimizer: str,
  learning_rate: float,
  activation: str = "relu",
  kernel_init: str = "he_normal",
  momentum: float = 0.0,
  weight_decay: float = 0.0,
) -> ml_collections.ConfigDict:
  """One network of the comparison.

  optimizer: sgd | adam | adamw (dljax.optim); learning_rate: constant (config.optimizer.schedule);
  activation: relu | tanh | gelu | sigmoid and kernel_init: lecun_normal | he_normal |
  glorot_uniform | unit_normal (dljax.models.mlp); momentum: sgd's (0: plain SGD);
  weight_decay: decoupled, on matrices only (adamw, sgd).
  """
  return ml_collections.ConfigDict(
    {
      "optimizer": optimizer,
      "learning_rate": learning_rate,
      "activation": activation,
      "kernel_init": kernel_init,
      "momentum": momentum,
      "weight_decay": weight_decay,
    }
  )


def get_config(variant_name: str = ""):
  c = base_config()
  c.task = "basics_compare"  # dljax.tasks.basics_compare
  c.dataset = "mnist5k"  # 4,000 train / 1,000 test real MNIST digits, offline
  c.hidden = (256, 256)  # every variant's MLP widths
  c.batch_size = 128  # one batch, shared by every variant at each step
  c.eval_batch_size = 1000  # the 1,000 test digits in one batch
  c.num_epochs = 10  # num_steps = num_epochs * (4000 // batch_size) unless set
  c.eval_every_steps = 31  # about once per epoch: the accuracy curves
  c.log_every_steps = 10  # points of the training-loss curves
  c.checkpoint_every_steps = 155  # every 5 epochs
  c.optimizer.schedule = "constant"  # shared by all variants: compare the update rules alone
  c.variants = ml_collections.ConfigDict(
    {  # name -> variant(...); names label the metrics
      "sgd": variant("sgd", 0.05),
      "momentum": variant("sgd", 0.05, momentum=0.9),
      "adam": variant("adam", 1e-3),
      "adamw": variant("adamw", 1e-3, weight_decay=0.1),
      "adam_tanh": variant("adam", 1e-3, "tanh", "glorot_uniform"),
      "adam_sigmoid": variant("adam", 1e-3, "sigmoid", "glorot_uniform"),
      "adam_gelu": variant("adam", 1e-3, "gelu"),
      "adam_unit_normal": variant("adam", 1e-3, kernel_init="unit_normal"),
    }
  )
  return apply_variant(c, variant_name, {"smoke": smoke})


def smoke(c):
  c.dataset = "digits"  # scikit-learn's 8x8 digits: loads in no time
  c.hidden = (16,)
  c.batch_size = 32
  c.variants = ml_collections.ConfigDict(
    {
      "sgd": c.variants.sgd,  # two differing variants
      "adam_tanh": c.variants.adam_tanh,
    }
  )
  make_smoke(c)
  c.eval_every_steps = 10  # two evaluations, two redraws of comparison.png
