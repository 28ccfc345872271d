"""The dljax training steps the benchmarks time, each on a fixed synthetic batch.

A workload is an experiment config's model, optimizer and train step (`dljax.steps`, state
donated, `steps_per_call` steps per call as the config trains), data-parallel over the config's
devices. The batch is made with NumPy so that a PyTorch peer can train on the very same values.
On CPUs the language models use their configs' `cpu` variant; on accelerators vision models get
a larger batch (`Spec.accelerator_batch`).
"""

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.flops import analytic_train_flops, xla_train_flops
from dljax.errors import unknown_name

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHAR_VOCAB = 65  # tiny-shakespeare's characters


@dataclasses.dataclass(frozen=True)
class Spec:
  config: str  # experiments/configs/NAME.py
  image_shape: tuple | None  # (h, w, c) of a vision model's input; None: a language model
  accelerator_batch: int = 0  # batch size on GPUs and TPUs (0: the config's)
  model: str = ""  # overrides the config's model.name
  cpu_variant: str = ""  # the config variant used on CPUs


SPECS = {
  "mlp": Spec("mnist_mlp", (28, 28, 1), accelerator_batch=4096),
  "cnn": Spec("mnist_cnn", (28, 28, 1), accelerator_batch=1024),
  "resnet": Spec("cifar10_resnet", (32, 32, 3), accelerator_batch=512),
  "resnet18": Spec("cifar10_resnet", (32, 32, 3), accelerator_batch=512, model="resnet18"),
  "lstm": Spec("shakespeare_lstm", None, cpu_variant="cpu"),
  "gpt": Spec("shakespeare_gpt", None, cpu_variant="cpu"),
  "gpt2": Spec("gpt2_small", None),
}
# Timed as experiments.train runs them (each step gathers its batch from the device-resident set).
GENERATIVE = {
  "vae": "mnist_vae",
  "dcgan": "mnist_dcgan",
  "ddpm": "mnist_ddpm",
  "flow": "mnist_flow",
}
NAMES = (*SPECS, "ppo", *GENERATIVE)


@dataclasses.dataclass
class Workload:
  """A compiled train step with its state and batch, ready to be timed."""

  name: str
  mesh: Any  # the data mesh the step runs on, current while it compiles (as in a training run)
  step: Any  # a dljax.steps.TrainStep: jitted (state, feed) -> (state, metrics), state donated
  state: Any
  feed: Any
  items_per_step: int
  unit: str  # what items are: examples, tokens, env-steps
  steps_per_call: int = 1
  config: Any = None  # the experiment config (None for ppo)
  model: Any = None  # the Flax module (None for ppo)
  batch: dict | None = None  # the host (NumPy) batch fed to the step
  input_shape: tuple = ()  # one example's shape (image, or (length,) tokens)
  single_step: Callable | None = None  # the same step unscanned, for XLA's FLOPs count
  schedule_steps: int = 1000  # length of the learning-rate schedule
  compile_s: float = 0.0
  compiled: Callable | None = None  # the step compiled ahead of time, by `compile`

  @property
  def num_devices(self) -> int:
    return self.mesh.size

  @property
  def bounded(self) -> bool:
    """Whether to wait for each call before the next (XLA:CPU multi-device collectives)."""
    from dljax import parallel

    return parallel.needs_bounded_dispatch(self.mesh)

  @property
  def batch_size(self) -> int:
    if self.batch:
      return len(next(iter(self.batch.values())))
    return self.config.get("batch_size", 0) if self.config else 0

  def compile(self):
    """Compiles the step ahead of time and runs two calls (first runs allocate buffers).

    It compiles under `jax.set_mesh(mesh)`, as `dljax.tasks.train` runs a config: a step that
    splits what it computes itself (`parallel.split_batch`, e.g. a batch gathered from a
    device-resident set) would otherwise compute the whole batch on every device."""
    import jax

    t0 = time.perf_counter()
    with jax.set_mesh(self.mesh):
      self.compiled = self.step.fn.lower(self.state, self.feed).compile()
    self.compile_s = time.perf_counter() - t0
    for _ in range(2):
      self.state, metrics = self.compiled(self.state, self.feed)
    jax.block_until_ready(metrics)

  def seconds_per_step(self, steps: int) -> float:
    """Wall time per step over at least `steps` steps (whole calls), after `compile`."""
    import jax

    calls = max(1, -(-steps // self.steps_per_call))
    bounded = self.bounded
    t0 = time.perf_counter()
    for _ in range(calls):
      self.state, metrics = self.compiled(self.state, self.feed)
      if bounded:
        jax.block_until_ready(metrics)
    jax.block_until_ready(metrics)
    return (time.perf_counter() - t0) / (calls * self.steps_per_call)

  def analytic_flops(self) -> int | None:
    """Model FLOPs of one step (benchmarks.flops), None where no count exists (ppo)."""
    if self.model is None:
      return None
    return analytic_train_flops(self.model, self.batch_size, self.input_shape)

  def xla_flops(self) -> tuple[float, bool]:
    """XLA's FLOPs of one unscanned step, and whether that count is complete."""
    return xla_train_flops((self.single_step or self.step).fn, self.state, self.feed)


def load_config(spec: Spec, accelerator: bool, dtype: str):
  from dljax.cli import load_config as load

  path = os.path.join(REPO, "experiments", "configs", f"{spec.config}.py")
  variant = "" if accelerator else spec.cpu_variant
  config = load(f"{path}:{variant}" if variant else path)
  if spec.model:
    config.model.name = spec.model
  config.dtype = dtype
  return config


def check_names(names, known=NAMES):
  """Raises the one-line error for a name in `names` that is not a workload in `known`."""
  for name in names:
    if name not in known:
      raise unknown_name("benchmark model", name, known)


def schedule_steps(config) -> int:
  """The run length the learning-rate schedule spans (vision configs derive theirs from epochs)."""
  return config.num_steps or 1000


def _mesh(config, num_devices: int):
  """The data mesh: `num_devices` (0: the config's `cpu_devices` on CPU, else all devices)."""
  import jax

  from dljax import parallel

  if not num_devices and jax.default_backend() == "cpu":
    num_devices = config.cpu_devices
  return parallel.make_data_mesh(min(num_devices, jax.device_count()) if num_devices else 0)


def build(
  name: str,
  batch_size: int = 0,
  dtype: str = "float32",
  num_devices: int = 0,
  steps_per_call: int = 0,
) -> Workload:
  """The workload `name` (see NAMES) at `batch_size` (0: the default), in compute `dtype`, with
  `steps_per_call` steps per call (0: the config's)."""
  import jax

  if name == "ppo":
    return _ppo()
  if name in GENERATIVE:
    return _generative(name, num_devices)
  check_names([name])
  spec = SPECS[name]
  accelerator = jax.default_backend() != "cpu"
  config = load_config(spec, accelerator, dtype)
  config.steps_per_call = steps_per_call or config.steps_per_call
  batch_size = batch_size or (accelerator and spec.accelerator_batch) or config.batch_size
  mesh = _mesh(config, num_devices)
  from dljax import parallel

  parallel.check_batch_divisible(batch_size, mesh)
  if spec.image_shape is None:
    return _language_model(name, config, batch_size, mesh)
  return _vision(name, config, spec.image_shape, batch_size, mesh)


def _finish(name, config, model, batch, input_shape, loss_fn, init, mesh) -> Workload:
  """The workload of `loss_fn`'s train step: state replicated and `batch` split over `mesh`
  (whole on every device where its size does not divide)."""
  import jax

  from dljax import parallel
  from dljax.steps import make_train_step

  language_model = len(input_shape) == 1
  batch_size = len(next(iter(batch.values())))
  return Workload(
    name=name,
    mesh=mesh,
    step=make_train_step(loss_fn, steps_per_call=config.steps_per_call),
    state=jax.jit(init, out_shardings=parallel.replicated(mesh))(),
    feed=jax.device_put(batch, parallel.batch_sharding(mesh, batch_size)),
    items_per_step=batch_size * input_shape[0] if language_model else batch_size,
    unit="tokens" if language_model else "examples",
    steps_per_call=config.steps_per_call,
    config=config,
    model=model,
    batch=batch,
    input_shape=input_shape,
    single_step=make_train_step(loss_fn),
    schedule_steps=schedule_steps(config),
  )


def _vision(name: str, config, image_shape: tuple, batch_size: int, mesh) -> Workload:
  import jax
  import jax.numpy as jnp

  from dljax.models import build_model
  from dljax.models.precision import dtype_kwargs
  from dljax.optim import make_optimizer
  from dljax.tasks.classification import classification_loss
  from dljax.train_state import init_model_state

  model = build_model(config.model, num_classes=10, **dtype_kwargs(config.model.name, config.dtype))
  tx = make_optimizer(config.optimizer, schedule_steps(config))
  rng = np.random.default_rng(0)
  batch = {
    "image": rng.uniform(size=(batch_size, *image_shape)).astype(np.float32),
    "label": (np.arange(batch_size) % 10).astype(np.int32),
  }

  def init():
    return init_model_state(model, tx, jax.random.PRNGKey(0), jnp.zeros((1, *image_shape)))

  return _finish(name, config, model, batch, image_shape, classification_loss, init, mesh)


def _language_model(name: str, config, batch_size: int, mesh) -> Workload:
  import jax
  import jax.numpy as jnp

  from dljax.models import build_model
  from dljax.optim import make_optimizer
  from dljax.tasks.language_model import language_model_spec, lm_loss
  from dljax.train_state import init_model_state

  vocab_size = config.get("vocab_size", CHAR_VOCAB)
  model = build_model(language_model_spec(config, vocab_size))
  tx = make_optimizer(config.optimizer, schedule_steps(config))
  windows = np.random.default_rng(0).integers(0, vocab_size, (batch_size, config.block_size + 1))
  windows = windows.astype(np.int32)
  batch = {"inputs": windows[:, :-1], "targets": windows[:, 1:]}

  def init():
    tokens = jnp.zeros((1, config.block_size), jnp.int32)
    return init_model_state(model, tx, jax.random.PRNGKey(0), tokens)

  return _finish(name, config, model, batch, (config.block_size,), lm_loss, init, mesh)


def _ppo() -> Workload:
  """One jitted chunk of cartpole_ppo: every seed's rollouts and PPO updates, on one device."""
  import jax

  from dljax import parallel
  from dljax.cli import load_config as load
  from dljax.rl import ppo
  from dljax.rl.agent import setup

  config = load(os.path.join(REPO, "experiments", "configs", "cartpole_ppo.py"))
  config.chunk_updates = 10
  mesh = parallel.make_data_mesh(1)  # see dljax.rl.config.rl_config's cpu_devices
  exp = ppo.build_experiment(config, mesh)
  state = jax.jit(exp.init_state, out_shardings=exp.state_sharding)()
  s = setup(config)
  items = s.num_seeds * s.chunk_updates * s.steps_per_update
  return Workload("ppo", mesh, exp.train_step, state, None, items, "env-steps", config=config)


def _generative(name: str, num_devices: int) -> Workload:
  """One call of a generative config's train step (the VAE's, the DCGAN's D then G, the DDPM's or
  the flow's U-Net with its EMA) exactly as `experiments.train` runs it, fed from its
  device-resident dataset."""
  import jax

  from dljax import parallel
  from dljax.cli import load_config as load
  from dljax.tasks import build_experiment

  config = load(os.path.join(REPO, "experiments", "configs", f"{GENERATIVE[name]}.py"))
  config.fid_classifier_workdir = ""  # FID is part of evaluation, not of the step
  # The step gathers its batch from the device-resident set, so its cost does not depend on the
  # set's size: the embedded digits keep the benchmark offline (full MNIST needs a fetch).
  config.dataset = "mnist5k"
  mesh = _mesh(config, num_devices)
  exp = build_experiment(config, mesh)
  state = jax.jit(exp.init_state, out_shardings=parallel.replicated(mesh))()
  return Workload(
    name,
    mesh,
    exp.train_step,
    state,
    exp.feed(0),
    config.batch_size,
    "examples",
    steps_per_call=exp.steps_per_call,
    config=config,
  )


def measure(
  name: str,
  batch_size: int = 0,
  dtype: str = "float32",
  steps: int = 20,
  repeats: int = 5,
  peak_override: float = 0.0,
  num_devices: int = 0,
  steps_per_call: int = 0,
) -> dict:
  """Builds, compiles and times workload `name` (see `build`); returns its row of figures:
  compile time, median and spread of the step time, items/s, FLOPs and MFU."""
  from benchmarks import timing
  from benchmarks.flops import flops_figures

  workload = build(name, batch_size, dtype, num_devices, steps_per_call)
  workload.compile()
  seconds = timing.interleaved({name: workload.seconds_per_step}, steps, repeats)[name]
  row = {
    "model": name,
    "batch": workload.batch_size,
    "unit": workload.unit,
    "steps_per_call": workload.steps_per_call,
    "compile_s": workload.compile_s,
    **timing.summary(seconds),
  }
  step_s = row["median_ms"] / 1e3
  row[f"{workload.unit}_per_s"] = workload.items_per_step / step_s
  row.update(flops_figures(workload, step_s, dtype, peak_override))
  return row
