"""DDPM on MNIST digits: a small U-Net predicts the noise under a cosine schedule (dljax.tasks.diffusion).

  python -m experiments.train --config experiments/configs/mnist_ddpm.py --workdir runs/mnist_ddpm
  python -m experiments.generate --workdir runs/mnist_ddpm --num 64 --steps 50 --sampler ddim

The final evaluation scores `num_fid_samples` samples (ancestral sampling, 25 steps) with
fid_mnist_cnn (the classifier run of experiments/configs/mnist_cnn.py) and estimates the ELBO.
Variants: `cfg` (class-conditional, classifier-free guidance), `smoke` (seconds, for tests).
"""

from dljax.config import apply_variant, denoising_config, denoising_smoke


def get_config(variant: str = ""):
  c = denoising_config("diffusion")
  c.num_steps = 5000  # training steps (5.3 epochs of full mnist at batch 64)
  c.eval_every_steps = 500  # test loss and a sample grid this often
  c.checkpoint_every_steps = 250
  c.num_timesteps = 1000  # T of the forward process (the training times and the ELBO's terms)
  # The evaluations' sampler: ddpm (ancestral, eta 1) or ddim (eta 0). The ancestral sampler's
  # fresh noise at each step corrects this small network's errors where DDIM's deterministic
  # steps carry them to the end; docs/outlook.md compares both at several step counts.
  c.sampler = "ddpm"
  c.sample_steps = 25  # evenly spaced times of the evaluations' samples (and generate's default)
  c.elbo_images = 1000  # final evaluation: test images whose ELBO is estimated (0: none)
  c.elbo_timesteps = 20  # stratified times per image of the ELBO's Monte-Carlo sum over T terms
  return apply_variant(c, variant, {"cfg": cfg, "smoke": smoke})


def cfg(c):
  c.conditional = True
  c.guidance_scale = 1.0


def smoke(c):
  denoising_smoke(c)
  c.num_timesteps = 50
  c.elbo_images = 100
  c.elbo_timesteps = 4
