"""MLP-Mixer on MNIST digits: the model added by the walkthrough docs/add_a_model.md.

  python -m experiments.train --config experiments/configs/mnist_mixer.py --workdir runs/mnist_mixer

Defaults to the offline `mnist5k` (4,000 train / 1,000 test real MNIST digits). Variant `smoke`
runs in seconds (tests).
Its measured accuracy and times: docs/add_a_model.md.
"""

from dljax.config import apply_variant, image_classification_config, make_smoke


def get_config(variant: str = ""):
  c = image_classification_config()  # the offline mnist5k digits
  c.model.name = "mlp_mixer"
  c.model.patch_size = 7  # 28x28 images: 4x4 = 16 patches of 49 pixels
  c.model.width = 64  # channels of each patch's embedding
  c.model.num_blocks = 4  # Mixer blocks
  c.model.tokens_hidden = 64  # hidden units of the token-mixing MLPs
  c.model.channels_hidden = 256  # hidden units of the channel-mixing MLPs
  c.batch_size = 128
  c.num_epochs = 20
  c.augment.crop_pad = 2  # random 2-pixel shifts: 4,000 training digits are few for a Mixer
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 3e-3
  c.optimizer.weight_decay = 0.05
  c.optimizer.warmup_steps = 100  # LayerNorm nets like a short warmup
  return apply_variant(c, variant, {"smoke": smoke})


def smoke(c):
  c.dataset = "digits"
  c.model.patch_size = 4  # 8x8 images: 2x2 = 4 patches
  c.model.width = 16
  c.model.num_blocks = 1
  c.model.tokens_hidden = 8
  c.model.channels_hidden = 32
  c.augment.crop_pad = 0  # 2-pixel shifts of 8x8 digits hide most of what 40 steps can learn
  c.batch_size = 32
  make_smoke(c, num_steps=40)
