"""DCGAN on full MNIST: a generator and a discriminator, each with its own Adam, in one step.

  python -m dljax.data.fetch mnist
  python -m experiments.train --config experiments/configs/mnist_cnn.py --workdir runs/mnist_cnn
  python -m experiments.train --config experiments/configs/mnist_dcgan.py --workdir runs/mnist_dcgan

The second command trains the classifier whose features `fid_mnist_cnn` compares and whose
predictions give the samples' class shares (dljax/tasks/fid.py). --config.dataset=fashion_mnist with
--config.fid_classifier_workdir=runs/fashion_cnn (experiments/configs/fashion_cnn.py), or
cifar10 (32x32x3, TFDS) with --config.fid_classifier_workdir=''. Variant `smoke` runs in seconds
on the embedded mnist5k without a classifier (tests). Measured figures: docs/gans.md.
"""

import ml_collections

from dljax.config import apply_variant, dataset_config, make_smoke


def adam_for_gans(base: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """DCGAN's optimizer: Adam, learning rate 2e-4, beta1 0.5 (less momentum: the target moves)."""
  c = ml_collections.ConfigDict(base.to_dict())
  c.name = "adam"
  c.learning_rate = 2e-4
  c.b1 = 0.5
  c.schedule = "constant"
  return c


def get_config(variant: str = ""):
  c = dataset_config("gan", "mnist", tfds_download=True)  # or mnist5k, fashion_mnist, cifar10
  c.batch_size = 64  # real images per step (and as many generated ones)
  c.num_steps = 15000  # generator updates (each step also updates the discriminator once)
  c.eval_every_steps = 1000  # sample grid + scores (+ FID) this often: the GIF's frames
  c.checkpoint_every_steps = 1000
  c.num_grid_samples = 64  # samples from one fixed noise batch per grid
  # Sample with G's BatchNorm on the sampled batch's statistics (True, as in training) or on its
  # running averages (False); evaluations also report the FID of the other mode.
  c.sample_batch_stats = True
  c.fid_classifier_workdir = "runs/mnist_cnn"  # mnist_cnn run for fid_mnist_cnn ('' = no FID)

  c.gen = ml_collections.ConfigDict()  # the generator: its model and its optimizer
  c.gen.model = ml_collections.ConfigDict()
  c.gen.model.name = "dcgan_generator"  # dljax.models.dcgan
  c.gen.model.latent_dim = 64  # size of the noise z ~ N(0, I)
  # Channels at 7x7 (twice: a stride-1 convolution first), then 14x14 (28x28 images; 8, 16 for
  # 32x32): the widths of DCGAN implementations for MNIST.
  c.gen.model.features = (256, 128, 64)
  c.gen.model.stages = 2  # the last this many convolutions double the side, any before keep it
  c.gen.optimizer = adam_for_gans(c.optimizer)

  c.disc = ml_collections.ConfigDict()  # the discriminator: its model and its optimizer
  c.disc.model = ml_collections.ConfigDict()
  c.disc.model.name = "dcgan_discriminator"  # dljax.models.dcgan
  c.disc.model.features = (64, 128)  # channels at 14x14, then 7x7 (28x28 images)
  c.disc.model.stages = 0  # the first this many convolutions halve the side (0: all)
  c.disc.optimizer = adam_for_gans(c.optimizer)

  apply_variant(c, variant, {"smoke": smoke})
  del c["optimizer"]  # each network has its own, above
  return c


def smoke(c):
  c.dataset = "mnist5k"  # embedded: the tests need no fetch
  c.batch_size = 16
  c.gen.model.latent_dim = 8
  c.gen.model.features = (8, 4)
  c.disc.model.features = (4, 8)
  c.num_grid_samples = 16
  c.fid_classifier_workdir = ""
  make_smoke(c)
  c.eval_every_steps = 10
