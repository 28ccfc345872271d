"""The PyTorch training step that a dljax workload is raced against (benchmarks.compare).

Same batch (the workload's NumPy arrays), same loss, same optimizer as the experiment config
(AdamW with weight decay on matrices only, Adam or SGD with Nesterov momentum; the same
learning-rate schedule, evaluated once up front; global-norm clipping), same compute dtype
(`torch.autocast` to bfloat16 with float32 parameters, loss in float32). The optimizers use
PyTorch's fused kernels where the device has them, its fastest documented setting.
"""

import time

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.torch_models import twin


def make_optimizer(module: torch.nn.Module, cfg) -> torch.optim.Optimizer:
  """dljax.optim.make_optimizer's optimizer for `module` (its schedule is set per step)."""
  params = [p for p in module.parameters() if p.requires_grad]
  # dljax.optim.matrices_only: weight decay on kernels and embeddings, not biases or norm scales.
  groups = [
    {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.get("weight_decay", 0.0)},
    {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
  ]
  fused = {"fused": True}
  if cfg.name == "adamw":
    return torch.optim.AdamW(groups, lr=0.0, betas=(cfg.b1, cfg.b2), eps=1e-8, **fused)
  if cfg.name == "adam":
    return torch.optim.Adam(params, lr=0.0, betas=(cfg.b1, cfg.b2), eps=1e-8, **fused)
  if cfg.name == "sgd":
    return torch.optim.SGD(groups, lr=0.0, momentum=cfg.momentum, nesterov=cfg.nesterov, **fused)
  raise ValueError(f"no PyTorch optimizer for {cfg.name!r}")


class TorchTrainer:
  """A PyTorch twin of a dljax workload's model and train step on the same batch."""

  def __init__(self, workload, device: str, compile_model: bool):
    import jax

    from dljax.optim import make_schedule

    config = workload.config
    self.device = torch.device(device)
    self.module = twin(workload.model, workload.input_shape).to(self.device).train()
    self.forward = torch.compile(self.module) if compile_model else self.module
    self.optimizer = make_optimizer(self.module, config.optimizer)
    schedule = make_schedule(config.optimizer, workload.schedule_steps)
    self.learning_rates = np.asarray(jax.vmap(schedule)(np.arange(workload.schedule_steps)))
    self.clip = config.optimizer.get("grad_clip_norm", 0.0)
    self.bfloat16 = config.dtype == "bfloat16"
    if "image" in workload.batch:  # NHWC (Flax) to NCHW (PyTorch)
      self.inputs = torch.from_numpy(workload.batch["image"]).permute(0, 3, 1, 2).contiguous()
      self.targets = torch.from_numpy(workload.batch["label"]).long()
    else:
      self.inputs = torch.from_numpy(workload.batch["inputs"]).long()
      self.targets = torch.from_numpy(workload.batch["targets"]).long()
    self.inputs, self.targets = self.inputs.to(self.device), self.targets.to(self.device)
    self.steps_done = 0
    self.compile_s = 0.0

  def step(self) -> torch.Tensor:
    lr = float(self.learning_rates[min(self.steps_done, len(self.learning_rates) - 1)])
    for group in self.optimizer.param_groups:
      group["lr"] = lr
    self.optimizer.zero_grad(set_to_none=True)
    with torch.autocast(self.device.type, torch.bfloat16, enabled=self.bfloat16):
      logits = self.forward(self.inputs)
    loss = F.cross_entropy(logits.float().flatten(0, -2), self.targets.flatten())
    loss.backward()
    if self.clip:
      torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.clip, foreach=True)
    self.optimizer.step()
    self.steps_done += 1
    return loss

  def _sync(self):
    if self.device.type == "cuda":
      torch.cuda.synchronize(self.device)

  def warm_up(self, steps: int = 3):
    """The first steps (they compile, with torch.compile); their time is `compile_s`."""
    t0 = time.perf_counter()
    for _ in range(steps):
      loss = self.step()
    float(loss.detach())
    self._sync()
    self.compile_s = time.perf_counter() - t0

  def seconds_per_step(self, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
      loss = self.step()
    float(loss.detach())  # waits for the device, as dljax's block_until_ready
    self._sync()
    return (time.perf_counter() - t0) / steps
