"""Flow matching (rectified flow) on MNIST digits: a small U-Net learns the velocity that carries
noise to digits along straight paths (dljax.tasks.flow_matching).

  python -m experiments.train --config experiments/configs/mnist_flow.py --workdir runs/mnist_flow
  python -m experiments.generate --workdir runs/mnist_flow --num 64 --steps 20 --sampler heun

The final evaluation scores `num_fid_samples` samples (Heun steps) with fid_mnist_cnn (the
classifier run of experiments/configs/mnist_cnn.py). Variants: `cfg` (class-conditional,
classifier-free guidance), `smoke` (seconds, for tests).
"""

from dljax.config import apply_variant, denoising_config, denoising_smoke


def get_config(variant: str = ""):
  c = denoising_config("flow_matching")
  c.num_steps = 5000  # training steps (5.3 epochs of full mnist at batch 64)
  c.eval_every_steps = 500  # test loss and a sample grid this often
  c.checkpoint_every_steps = 250
  c.sampler = "heun"  # the evaluations' ODE solver: euler (1 network call a step) or heun (2)
  c.sample_steps = 12  # 24 network calls a sample: the budget of mnist_ddpm's 25 steps
  return apply_variant(c, variant, {"cfg": cfg, "smoke": smoke})


def cfg(c):
  c.conditional = True
  c.guidance_scale = 1.0


def smoke(c):
  denoising_smoke(c)
