"""CNN on MNIST digits.

  python -m experiments.train --config experiments/configs/mnist_cnn.py --workdir runs/mnist_cnn

Defaults to the offline `mnist5k` (4,000 train / 1,000 test real MNIST digits); full TFDS MNIST
with --config.dataset=mnist. Variant `smoke` runs in seconds (tests).
Measured (2-core CPU): see README.
"""

from dljax.config import image_classification_config


def get_config(variant: str = ""):
  c = image_classification_config()
  c.dataset = "mnist5k"
  c.model.name = "cnn"
  c.model.features = (32, 64)
  c.model.dense = 256
  c.model.dropout = 0.0
  c.batch_size = 128
  c.num_epochs = 10
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 2e-3
  c.optimizer.warmup_steps = 30
  c.augment.crop_pad = 2
  if variant == "smoke":
    c.dataset = "digits"
    c.model.features = (8,)
    c.model.dense = 32
    c.batch_size = 32
    c.num_steps = 20
    c.optimizer.warmup_steps = 2
    c.log_every_steps = 5
    c.checkpoint_every_steps = 10
  elif variant:
    raise ValueError(f"unknown variant {variant!r} of mnist_cnn; known: smoke")
  return c
