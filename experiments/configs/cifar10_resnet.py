"""CIFAR-style ResNet on CIFAR-10 (TFDS), with random-crop and flip augmentation.

  python -m experiments.train --config experiments/configs/cifar10_resnet.py --workdir runs/c10

Default model ResNet-20 (0.27 M parameters, He et al. 2016's schedule shortened);
`--config.model.name=resnet18` for ResNet-18 (11.2 M). CIFAR-10 must be prepared with TFDS
first (the `tfds` extra). Variant `smoke` trains a ResNet-20 on the offline `digits` in seconds.
Not trained to the end here (no CIFAR-10 offline; 90 epochs are meant for an accelerator): its
step time is in README's results table and docs/benchmarks.md (`benchmarks.throughput`).
"""

from dljax.config import apply_variant, image_classification_config, make_smoke


def get_config(variant: str = ""):
  c = image_classification_config()
  c.dataset = "cifar10"
  c.model.name = "resnet20"  # dljax.models.resnet: resnet20 or resnet18
  c.batch_size = 128
  c.num_epochs = 90
  c.eval_every_steps = 3900
  c.checkpoint_every_steps = 1000
  c.optimizer.name = "sgd"
  c.optimizer.learning_rate = 0.1
  c.optimizer.momentum = 0.9
  c.optimizer.nesterov = True
  c.optimizer.weight_decay = 5e-4
  c.optimizer.warmup_steps = 390
  c.augment.crop_pad = 4
  c.augment.flip = True
  return apply_variant(c, variant, {"smoke": smoke})


def smoke(c):
  c.dataset = "digits"
  c.augment.flip = False
  c.augment.crop_pad = 1
  c.batch_size = 32
  c.model.stage_sizes = (1, 1, 1)  # one block per stage: every kind of block, a third the compile
  make_smoke(c, num_steps=10)
  c.eval_every_steps = 5
