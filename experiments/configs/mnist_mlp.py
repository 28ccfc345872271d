"""MLP on MNIST digits (the basics chapter's classifier).

  python -m experiments.train --config experiments/configs/mnist_mlp.py --workdir runs/mnist_mlp

Defaults to the offline `mnist5k`; full MNIST with --config.dataset=mnist (after
`python -m dljax.data.fetch mnist`). Variant `smoke` runs in seconds (tests).
Its measured accuracy and times: README's results table (`python -m benchmarks.reproduce`).
"""

from dljax.config import apply_variant, image_classification_config, make_smoke


def get_config(variant: str = ""):
  c = image_classification_config()
  c.dataset = "mnist5k"
  c.model.name = "mlp"  # dljax.models.mlp
  c.model.hidden = (512, 512)  # widths of the hidden layers
  c.model.dropout = 0.2  # after each hidden layer, in training
  c.batch_size = 128
  c.cpu_devices = 1  # its matmuls use both cores on one device; a 2-device split doubles the step
  c.num_epochs = 30
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.warmup_steps = 30
  c.optimizer.weight_decay = 1e-4
  return apply_variant(c, variant, {"smoke": smoke})


def smoke(c):
  c.dataset = "digits"
  c.model.hidden = (32,)
  c.batch_size = 32
  make_smoke(c)
