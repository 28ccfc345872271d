"""Variational autoencoder on binarized MNIST digits (the generative chapter).

  python -m experiments.train --config experiments/configs/mnist_vae.py --workdir runs/mnist_vae
  python -m experiments.generate --workdir runs/mnist_vae --num 64

The default is the Flax VAE example's MLP (784-500-20, ReLU, Bernoulli decoder) on the offline
`mnist5k` (4,000 train / 1,000 test digits, binarized dynamically); TFDS `binarized_mnist` (50,000
/ 10,000) with --config.dataset=binarized_mnist. Variants: `conv` (convolutional VAE), `latent2`
(2 latents: manifold and scatter figures), `mnist` (full MNIST, `python -m dljax.data.fetch mnist`:
the VAE of docs/outlook.md's table of generative models), `smoke` (seconds, for tests).
"""

import ml_collections

from dljax.config import apply_variant, image_config, make_smoke


def get_config(variant: str = ""):
  c = image_config("vae")  # grayscale [H, W, 1]: mnist5k, mnist, fashion_mnist, binarized_mnist
  c.batch_size = 64  # training images per step (more updates per epoch than 128)
  c.num_epochs = 80  # passes over the training images (num_steps = 0 derives the steps from it)
  c.eval_every_steps = 1240  # figures and test ELBO every 20 epochs of mnist5k (62 steps each)
  c.eval_batch_size = 500  # test images per ELBO evaluation batch
  # Weight of the KL term in the training loss: 1 trains on the ELBO; > 1 is a beta-VAE (codes
  # closer to the prior, blurrier reconstructions). Evaluations always report the ELBO (beta 1).
  c.beta = 1.0
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
  return apply_variant(
    c, variant, {"conv": conv, "latent2": latent2, "mnist": mnist, "smoke": smoke}
  )


def conv(c):
  c.model.name = "vae_conv"
  c.model.features = (16, 32)  # channels of the downsampling conv stages (decoder: reversed)
  c.model.hidden = 256
  # nll_iw decodes k samples per test image, and this decoder costs many times the MLP's.
  c.iw_samples = 100


def latent2(c):
  c.model.latent_dim = 2


def mnist(c):
  c.dataset = "mnist"  # 60,000 / 10,000: FID on the test set the DCGAN and the DDPM are scored on
  c.num_epochs = 20  # 18,760 steps of 64 (the default's 80 epochs of mnist5k are 4,960)
  c.eval_every_steps = 3752  # every 4 epochs


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
