"""The config fields every experiment shares; `experiments/configs/*.py` start from `base_config`."""

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.task = ""
  c.seed = 0
  c.num_steps = 0  # 0: derived by the task (e.g. from num_epochs)
  c.steps_per_call = 1  # train steps per jitted call (a lax.scan); see dljax.steps
  c.log_every_steps = 50
  c.eval_every_steps = 0  # 0: evaluate only at the end
  c.checkpoint_every_steps = 500
  c.keep_checkpoints = 3
  c.quiet = False  # no progress bar
  # The data mesh spans `num_devices` devices (0: all); on CPU the host is first split into
  # `cpu_devices` devices (0: one per core, at most 8), see dljax.parallel.setup_devices.
  c.num_devices = 0
  c.cpu_devices = 0
  c.distributed = False  # call jax.distributed.initialize() (multi-host)
  # XLA's LLVM optimisation level, 0-3 (-1: XLA's default, 3); see dljax.parallel.setup_devices.
  c.xla_optimization_level = -1

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = "cosine"
  c.optimizer.warmup_steps = 0
  c.optimizer.decay_steps = 0  # 0: decay over the whole run
  c.optimizer.end_learning_rate_factor = 0.0
  c.optimizer.b1 = 0.9
  c.optimizer.b2 = 0.999
  c.optimizer.weight_decay = 0.0
  c.optimizer.momentum = 0.9
  c.optimizer.nesterov = False
  c.optimizer.grad_clip_norm = 0.0  # 0: no clipping
  return c


def make_smoke(c: ml_collections.ConfigDict, num_steps: int = 20) -> ml_collections.ConfigDict:
  """Turns a config into a seconds-long run for tests: few steps, frequent logs and checkpoints."""
  c.num_steps = num_steps
  c.log_every_steps = 5
  c.checkpoint_every_steps = 10
  c.optimizer.warmup_steps = 2
  return c


def image_classification_config() -> ml_collections.ConfigDict:
  """Defaults shared by the vision configs."""
  c = base_config()
  c.task = "classification"
  c.dataset = "mnist5k"
  c.data_dir = ""  # TFDS data_dir ('' = TFDS default)
  c.tfds_download = True
  # Compute dtype: float32, or bfloat16 (float32 parameters, optimizer state and loss; for the cnn
  # and resnet models). See dljax.precision.
  c.dtype = "float32"
  c.batch_size = 128
  c.eval_batch_size = 1000
  c.num_epochs = 10
  c.augment = ml_collections.ConfigDict({"crop_pad": 0, "flip": False})
  c.model = ml_collections.ConfigDict({"name": "mlp"})
  return c


def language_model_config() -> ml_collections.ConfigDict:
  """Defaults shared by the sequence configs (nanoGPT's shakespeare_char settings)."""
  c = base_config()
  c.task = "language_model"
  c.dataset = "tiny_shakespeare"  # or text:PATH for any local UTF-8 file
  c.data_dir = ""
  c.tfds_download = False
  # Compute dtype: float32, or bfloat16 (float32 parameters, optimizer state and loss; for the
  # gpt model). See dljax.precision.
  c.dtype = "float32"
  c.block_size = 256
  c.batch_size = 64
  c.num_steps = 5000
  c.eval_every_steps = 250
  c.eval_windows = 2048  # fixed random validation windows for val_loss
  c.eval_full_val = False  # True: every non-overlapping validation window instead
  c.eval_batch_size = 256
  c.sample_tokens = 500  # characters sampled into WORKDIR/samples at each evaluation (0: none)
  c.sample_prompt = "\n"
  c.sample_temperature = 0.8
  c.sample_top_k = 200
  c.model = ml_collections.ConfigDict({"name": "gpt"})
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
