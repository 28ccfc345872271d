"""CNN on MNIST digits.

  python -m experiments.train --config experiments/configs/mnist_cnn.py --workdir runs/mnist_cnn

Defaults to the offline `mnist5k` (4,000 train / 1,000 test real MNIST digits); full MNIST
(60,000 / 10,000) with --config.dataset=mnist after `python -m dljax.data.fetch mnist`. Variant
`smoke` runs in seconds (tests).
Its measured accuracy and times: README's results table (`python -m benchmarks.reproduce`).
"""

from dljax.config import apply_variant, image_classification_config, make_smoke


def get_config(variant: str = ""):
  c = image_classification_config()
  c.dataset = "mnist5k"
  c.model.name = "cnn"  # dljax.models.cnn: conv stages, a dense layer, the logits
  c.model.features = (32, 64)  # channels of the conv stages (3x3 conv, ReLU, 2x2 pool each)
  c.model.dense = 256  # width of the ReLU layer before the logits
  c.model.dropout = 0.3  # before the logits, in training
  c.model.conv = "shift"  # nn.Conv's function, faster on CPU
  c.model.pool = "max"  # ~0.4 points over "avg" at ~25% more time per step
  c.batch_size = 64  # measured ~2.4x faster per example than 128 on CPU (cache, presumably)
  c.num_epochs = 24
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 3e-3
  c.optimizer.weight_decay = 0.05
  c.optimizer.schedule = "cosine"
  c.optimizer.warmup_steps = 372  # a quarter of the run: warmup + cosine is a one-cycle schedule
  c.augment.crop_pad = 2
  return apply_variant(c, variant, {"smoke": smoke})


def smoke(c):
  c.dataset = "digits"
  c.model.features = (8,)
  c.model.dense = 32
  c.batch_size = 32
  make_smoke(c)
