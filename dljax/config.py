"""The config fields every experiment shares, with their defaults, and the variant helper.

`experiments/configs/*.py` start from `base_config` (or a family's config built on it) and name
their variants through `apply_variant`. Each field is defined, with its default and meaning, once.
"""

from collections.abc import Callable

import ml_collections

from dljax.errors import DljaxError


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.task = ""  # the experiment's module in dljax.tasks.TASKS (classification, ppo...)
  c.seed = 0  # every random draw of the run (initialisation, data order, dropout) derives from it
  c.num_steps = 0  # 0: derived by the task (e.g. from num_epochs)
  c.steps_per_call = 1  # train steps per jitted call (a lax.scan); see dljax.steps
  c.log_every_steps = 50  # fetch, NaN-check and log the train metrics this often (a host sync)
  c.eval_every_steps = 0  # 0: evaluate only at the end
  c.checkpoint_every_steps = 500  # 0: only at the end
  c.keep_checkpoints = 3  # the newest k checkpoints stay in WORKDIR/checkpoints
  c.quiet = False  # no progress bar
  # End a run in which no train step completes for this long, naming the checkpoint a rerun
  # resumes from (exit status 75, dljax.watchdog); compiling and evaluating do not count. 0: never.
  c.watchdog_timeout_s = 600.0
  c.num_devices = 0  # devices of the data mesh (0: all)
  # On CPU the host is first split into this many devices (0: one per core, at most 8), see
  # dljax.parallel.setup_devices; GPUs and TPUs are unaffected.
  c.cpu_devices = 0
  c.distributed = False  # call jax.distributed.initialize() (multi-host)
  # XLA's LLVM optimisation level, 0-3 (-1: XLA's default, 3); see dljax.parallel.setup_devices.
  c.xla_optimization_level = -1

  c.optimizer = ml_collections.ConfigDict()  # dljax.optim.make_optimizer
  c.optimizer.name = "adamw"  # adamw | adam | sgd
  c.optimizer.learning_rate = 1e-3  # the peak, reached at the end of the warmup
  c.optimizer.schedule = "cosine"  # after the warmup: constant | cosine | linear decay
  c.optimizer.warmup_steps = 0  # linear warmup from 0
  c.optimizer.decay_steps = 0  # 0: decay over the whole run
  c.optimizer.end_learning_rate_factor = 0.0  # the decay ends at learning_rate * this
  c.optimizer.b1 = 0.9  # adam, adamw: decay rate of the gradient's running mean
  c.optimizer.b2 = 0.999  # adam, adamw: decay rate of the squared gradient's running mean
  c.optimizer.weight_decay = 0.0  # adamw, sgd: decoupled, on matrices only (dljax.optim)
  c.optimizer.momentum = 0.9  # sgd (0: plain SGD)
  c.optimizer.nesterov = False  # sgd: Nesterov momentum
  c.optimizer.grad_clip_norm = 0.0  # clip the gradients' global norm to this; 0: no clipping
  return c


def apply_variant(
  c: ml_collections.ConfigDict,
  variant: str,
  variants: dict[str, Callable[[ml_collections.ConfigDict], None]],
) -> ml_collections.ConfigDict:
  """`c` changed in place by `variants[variant]` (the `:VARIANT` of `--config`); '' keeps it."""
  if variant and variant not in variants:
    fix = (
      f"known variants: {', '.join(sorted(variants))}; name one (--config=PATH:VARIANT) or none "
      f"for the default"
      if variants
      else f"this config has none: drop ':{variant}' from --config"
    )
    raise DljaxError(f"unknown variant {variant!r}; {fix}")
  if variant:
    variants[variant](c)
  return c


def make_smoke(c: ml_collections.ConfigDict, num_steps: int = 20) -> ml_collections.ConfigDict:
  """Turns a config into a seconds-long run for tests: few steps, frequent logs and checkpoints."""
  c.num_steps = num_steps
  c.log_every_steps = 5
  c.checkpoint_every_steps = 10
  c.optimizer.warmup_steps = 2
  return c


def dataset_config(task: str, dataset: str, tfds_download: bool) -> ml_collections.ConfigDict:
  """`base_config` for a task that reads a named dataset: the dataset fields."""
  c = base_config()
  c.task = task
  # A dljax.data name: embedded (mnist5k, digits), fetched (mnist, fashion_mnist: python -m
  # dljax.data.fetch NAME), text:PATH for a local UTF-8 file (text tasks) or a TFDS name
  # (cifar10, binarized_mnist, tiny_shakespeare...).
  c.dataset = dataset
  # Fetched datasets' directory (dljax.data.idx) or TFDS's data_dir ('' = their defaults)
  c.data_dir = ""
  c.tfds_download = tfds_download  # let TFDS download and prepare a missing dataset
  return c


def image_config(task: str) -> ml_collections.ConfigDict:
  """Defaults shared by the image configs (classification, GAN, VAE): the offline `mnist5k`."""
  return dataset_config(task, "mnist5k", tfds_download=True)


def image_classification_config() -> ml_collections.ConfigDict:
  """Defaults shared by the vision configs."""
  c = image_config("classification")
  # The training images on the data mesh (dljax.data.placement): "replicated" (every device holds
  # them all; batches equal to a 1-device run's) or "sharded" (each process reads, and each of the
  # N devices holds, 1/N of them: for datasets too large to replicate; other batches).
  c.data_placement = "replicated"
  # Compute dtype: float32, or bfloat16 (float32 parameters, optimizer state and loss; for the cnn
  # and resnet models). See dljax.models.precision.
  c.dtype = "float32"
  c.batch_size = 128  # training images per step, split over the data mesh
  c.eval_batch_size = 1000  # test images per evaluation batch
  c.num_epochs = 10  # passes over the training images (num_steps = 0 derives the steps from it)
  # Random crops (pad by crop_pad pixels, then crop back; 0: none) and horizontal flips.
  c.augment = ml_collections.ConfigDict({"crop_pad": 0, "flip": False})
  c.model = ml_collections.ConfigDict({"name": "mlp"})  # dljax.models name and its fields
  return c


def language_model_config() -> ml_collections.ConfigDict:
  """Defaults shared by the sequence configs (nanoGPT's shakespeare_char settings)."""
  c = dataset_config("language_model", "tiny_shakespeare", tfds_download=False)
  # Compute dtype: float32, or bfloat16 (float32 parameters, optimizer state and loss; for the
  # gpt model). See dljax.models.precision.
  c.dtype = "float32"
  c.block_size = 256  # characters of context per training window
  c.batch_size = 64  # windows per step, split over the data mesh
  c.num_steps = 5000
  c.eval_every_steps = 250
  c.eval_windows = 2048  # fixed random validation windows for val_loss
  c.eval_full_val = False  # True: every non-overlapping validation window instead
  c.eval_batch_size = 256  # validation windows per evaluation batch
  c.sample_tokens = 500  # characters sampled into WORKDIR/samples at each evaluation (0: none)
  c.sample_prompt = "\n"  # the text the samples continue
  c.sample_temperature = 0.8  # < 1 sharpens the next-character distribution, > 1 flattens it
  c.sample_top_k = 200  # sample among the k likeliest characters only (0: all)
  c.model = ml_collections.ConfigDict({"name": "gpt"})  # dljax.models name and its fields
  # Where the train state lives on the data mesh: "replicated" (a full copy on every device) or
  # "fsdp" (parameters and optimizer state split over the devices; dljax.parallel.fsdp_sharding).
  c.state_sharding = "replicated"
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.b2 = 0.99
  c.optimizer.weight_decay = 0.1
  c.optimizer.warmup_steps = 100
  c.optimizer.end_learning_rate_factor = 0.1
  c.optimizer.grad_clip_norm = 1.0
  return c


def language_model_smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A seconds-long language-model run on the shared corpus, for tests."""
  c.dataset = "text:../shared/data/tinyshakespeare.txt"
  c.block_size = 16
  c.batch_size = 8
  c.steps_per_call = 5
  c.eval_every_steps = 10
  c.eval_windows = 64
  c.sample_tokens = 40
  return make_smoke(c)


def basics_config() -> ml_collections.ConfigDict:
  """Defaults shared by the basics configs."""
  c = base_config()
  c.task = "basics"
  c.problem = "linear"  # linear | logistic | moons (see dljax.tasks.basics_data)
  c.num_train = 1000  # training examples
  c.num_test = 1000  # held-out examples for the test metrics
  c.num_features = 10  # input dimension of the regressions (two moons is 2-D)
  c.noise = 0.1  # linear: std of the target noise; moons: std of the points' jitter
  c.data_seed = 0  # the data (and the true weights) are a function of this seed
  c.batch_size = 100  # training examples per step
  c.eval_batch_size = 1000  # test examples per evaluation batch
  c.update_rule = "optax"  # optax: config.optimizer; jax_grad: theta <- theta - lr * grad by hand
  c.grad_check = False  # report grad_max_rel_error (jax.grad vs finite differences) at each eval
  c.grad_check_eps = 1e-5  # finite-difference step (float64)
  c.cpu_devices = 1  # tiny models: splitting the CPU into devices only adds overhead
  c.log_every_steps = 25
  c.model = ml_collections.ConfigDict()  # dljax.models name and its fields
  c.model.name = "mlp"
  c.model.hidden = ()  # no hidden layer: the linear model x @ W + b
  c.model.activation = "relu"  # of the hidden layers (dljax.models.mlp.ACTIVATIONS)
  c.model.kernel_init = "lecun_normal"  # dljax.models.mlp.KERNEL_INITS
  c.optimizer.name = "sgd"
  c.optimizer.learning_rate = 0.1
  c.optimizer.momentum = 0.0
  c.optimizer.schedule = "constant"
  return c


def denoising_config(task: str) -> ml_collections.ConfigDict:
  """Defaults shared by the diffusion and flow-matching configs (dljax.tasks.denoising), on full
  MNIST (`python -m dljax.data.fetch mnist`; any images whose side the U-Net can halve work)."""
  c = dataset_config(task, "mnist", tfds_download=True)
  c.batch_size = 64  # training images per step, split over the data mesh
  # The sampling network's moving average: ~200 steps of memory, short enough that a run of a
  # few thousand steps samples with trained weights (DDPM's 0.9999 suits 800,000 steps).
  c.ema_decay = 0.995
  c.conditional = False  # class-conditional U-Net (label embedding) trained with label dropout
  c.label_dropout = 0.1  # conditional: share of training labels replaced by "none"
  c.guidance_scale = 0.0  # conditional: classifier-free guidance w at sampling (0: none)
  c.sample_steps = 10  # sampler steps of the evaluations' samples (and generate's default)
  c.eval_images = 1000  # test images on which each evaluation reports the EMA network's loss
  c.num_grid_samples = 64  # samples from one fixed noise batch in each evaluation's grid
  c.num_fid_samples = 10_000  # final evaluation: samples scored by fid_mnist_cnn (as many as
  # the test images, as the real-vs-real floor has)
  c.sample_batch_size = 500  # images per jitted sampling call (memory: the U-Net on this batch)
  c.fid_classifier_workdir = "runs/mnist_cnn"  # mnist_cnn run for fid_mnist_cnn ('' = no FID)
  c.model = ml_collections.ConfigDict()
  c.model.name = "unet"  # dljax.models.unet
  c.model.features = (16, 32, 32)  # channels at 28x28, 14x14, 7x7 (attention at 7x7): sized
  # for a 2-core CPU, where a 1.1M-parameter (32, 64, 64) U-Net takes ~4x longer per step
  c.model.num_res_blocks = 1  # residual blocks per level (the decoder has one more)
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-3  # the small U-Net trains well at 1e-3 with warmup and decay
  c.optimizer.warmup_steps = 100  # linear warmup: the first steps' Adam updates are erratic
  c.optimizer.grad_clip_norm = 1.0  # as in DDPM's training
  return c


def denoising_smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The seconds-long variant of a denoising config: a tiny U-Net on 8x8 digits, no classifier."""
  c.dataset = "digits"  # 8x8, offline
  c.model.features = (8, 8)  # two levels, 8x8 and 4x4 (attention): the fewest ops to compile
  c.batch_size = 32
  c.eval_images = 64
  c.num_grid_samples = 16
  c.sample_steps = 4
  c.fid_classifier_workdir = ""
  make_smoke(c)
  c.eval_every_steps = 10
  return c
