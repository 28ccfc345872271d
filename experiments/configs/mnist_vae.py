"""Variational autoencoder on binarized MNIST digits (the generative chapter).

  python -m experiments.train --config experiments/configs/mnist_vae.py --workdir runs/mnist_vae
  python -m experiments.generate --workdir runs/mnist_vae --num 64

The default is the Flax VAE example's MLP (784-500-20, ReLU, Bernoulli decoder) on the offline
`mnist5k` (4,000 train / 1,000 test digits, binarized dynamically); TFDS `binarized_mnist` (50,000
/ 10,000) with --config.dataset=binarized_mnist. Variants: `conv` (convolutional VAE), `latent2`
(2 latents: manifold and scatter figures), `smoke` (seconds, for tests).
"""

import ml_collections

from dljax.config import apply_variant, base_config, make_smoke


def get_config(variant: str = ""):
  c = base_config()
  c.task = "vae"
  c.dataset = "mnist5k"  # grayscale [H, W, 1]: mnist5k, mnist, fashion_mnist, binarized_mnist
  c.data_dir = ""  # fetched datasets' directory (dljax.data.idx) or TFDS's ('' = their defaults)
  c.tfds_download = True  # let TFDS download and prepare a missing dataset
  c.batch_size = 64  # training images per step (more updates per epoch than 128: better in 3 min)
  c.num_epochs = 80  # passes over the training images (num_steps = 0 derives the steps from it)
  c.eval_every_steps = 1240  # figures and test ELBO every 20 epochs of mnist5k (62 steps each)
  c.eval_batch_size = 500  # test images per ELBO evaluation batch
  c.iw_samples = 1000  # k of the importance-weighted bound nll_iw (final evaluation only)
  c.iw_batch_size = 10  # test images per nll_iw batch: iw_batch_size * iw_samples decoder passes
  c.test_binarization_seed = 0  # the one fixed binarization of the test set, shared by all runs
  c.fid_classifier_workdir = "runs/mnist_cnn"  # mnist_cnn run whose features give fid_mnist_cnn
  c.model = ml_collections.ConfigDict()
  c.model.name = "vae_mlp"  # vae_mlp or vae_conv (dljax/models/vae.py)
  c.model.latent_dim = 20  # size of z
  c.model.hidden = 500  # width of the encoder's and decoder's hidden layer
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = "cosine"
  return apply_variant(c, variant, {"conv": conv, "latent2": latent2, "smoke": smoke})


def conv(c):
  c.model.name = "vae_conv"
  c.model.features = (16, 32)  # channels of the downsampling conv stages (decoder: reversed)
  c.model.hidden = 256
  # Its decoder costs ~25x the MLP's per sample on XLA:CPU; k = 1000 took ~10 min here.
  c.iw_samples = 100


def latent2(c):
  c.model.latent_dim = 2


def smoke(c):
  c.dataset = "digits"  # 8x8 digits, offline and tiny
  c.model.latent_dim = 2  # exercises every figure
  c.model.hidden = 32
  c.batch_size = 32
  c.eval_every_steps = 10
  c.iw_samples = 8
  c.iw_batch_size = 40
  c.fid_classifier_workdir = ""  # no classifier run needed
  make_smoke(c)
