"""mnist_cnn's CNN on full Fashion-MNIST: a classifier of clothing images, and the FID classifier
(dljax/fid.py) for generative models of them.

  python -m dljax.data.fetch fashion_mnist
  python -m experiments.train --config experiments/configs/fashion_cnn.py --workdir runs/fashion_cnn

A generative config then scores Fashion-MNIST samples with
--config.dataset=fashion_mnist --config.fid_classifier_workdir=runs/fashion_cnn. Variant `smoke`
runs in seconds on the fetched data (tests give it a few tiny IDX files).
"""

from dljax.config import apply_variant, make_smoke
from experiments.configs.mnist_cnn import get_config as mnist_cnn_config


def get_config(variant: str = ""):
  c = mnist_cnn_config()
  c.dataset = "fashion_mnist"  # 60,000 train / 10,000 test, fetched (dljax.data.fetch)
  c.num_epochs = 5  # 4,685 steps of 64: 60,000 images need fewer passes than mnist5k's 4,000
  c.optimizer.warmup_steps = 1171  # a quarter of the run, as mnist_cnn's (one-cycle schedule)
  c.augment.flip = True  # clothes are left-right symmetric; digits are not
  return apply_variant(c, variant, {"smoke": smoke})


def smoke(c):
  c.model.features = (8,)
  c.model.dense = 32
  c.batch_size = 32
  make_smoke(c)
