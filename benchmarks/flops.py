"""Training FLOPs per step: counted analytically from a model's shapes, and XLA's own count.

The analytic count is the one model-FLOPs utilisation (MFU) is defined with: the multiply-adds
of the matmuls and convolutions that carry weights, plus attention's score and value products.
A matmul `x (m, k) @ w (k, n)` costs `2mkn` forward and `2mkn` for the weight gradient, and
another `2mkn` for the input gradient unless its input is the data (the first layer of a vision
model needs none), hence "6N per token" for a language model (nanoGPT's `estimate_mfu`; PaLM,
Chowdhery et al. 2022, appendix B) plus `12 * n_layer * length * n_embd` for attention.
Embedding lookups, norms, activations and the optimizer are not counted (they are a few per cent
of XLA's count, which includes them).

XLA's cost analysis counts every operation of the compiled step, but a loop body (`lax.scan`,
e.g. the LSTM's recurrence or several steps per call) only once: `xla_train_flops` says when.
"""

import itertools
import math

import jax
import jax.extend

from dljax.models.cnn import CNN
from dljax.models.gpt import GPT
from dljax.models.mlp import MLP
from dljax.models.resnet import ResNet
from dljax.models.rnn_lm import RNNLM


def matmul(rows: int, inputs: int, outputs: int, input_grad: bool = True) -> int:
  """Training FLOPs of `x (rows, inputs) @ w (inputs, outputs)`: forward and backward."""
  return 2 * rows * inputs * outputs * (3 if input_grad else 2)


def conv(batch: int, out_h: int, out_w: int, k: int, cin: int, cout: int, input_grad=True) -> int:
  """A k x k convolution is a matmul of every output pixel's k*k*cin patch with the kernel."""
  return matmul(batch * out_h * out_w, k * k * cin, cout, input_grad)


def mlp_flops(model: MLP, batch: int, image_shape: tuple) -> int:
  widths = [math.prod(image_shape), *model.hidden, model.num_classes]
  pairs = enumerate(itertools.pairwise(widths))
  return sum(matmul(batch, a, b, input_grad=i > 0) for i, (a, b) in pairs)


def cnn_flops(model: CNN, batch: int, image_shape: tuple) -> int:
  h, w, channels = image_shape
  total = 0
  for i, width in enumerate(model.features):
    total += conv(batch, h, w, 3, channels, width, input_grad=i > 0)  # 'SAME', stride 1
    h, w, channels = h // 2, w // 2, width  # 2x2 pooling
  return (
    total
    + matmul(batch, h * w * channels, model.dense)
    + matmul(batch, model.dense, model.num_classes)
  )


def resnet_flops(model: ResNet, batch: int, image_shape: tuple) -> int:
  h, w, channels = image_shape
  total = conv(batch, h, w, 3, channels, model.stage_features[0], input_grad=False)  # stem
  channels = model.stage_features[0]
  for stage, (blocks, width) in enumerate(zip(model.stage_sizes, model.stage_features)):
    for block in range(blocks):
      if stage > 0 and block == 0:  # stride 2, 'SAME' padding
        h, w = -(-h // 2), -(-w // 2)
      total += conv(batch, h, w, 3, channels, width) + conv(batch, h, w, 3, width, width)
      if channels != width or (stage > 0 and block == 0):  # projection shortcut (1x1)
        total += conv(batch, h, w, 1, channels, width)
      channels = width
  return total + matmul(batch, channels, model.num_classes)


def lstm_flops(model: RNNLM, batch: int, length: int) -> int:
  tokens, hidden = batch * length, model.hidden_size
  gates = 4 * hidden if model.cell_type == "lstm" else 3 * hidden
  # Per layer: the input and the recurrent projections to the gates.
  per_layer = matmul(tokens, hidden, gates) + matmul(tokens, hidden, gates)
  return model.num_layers * per_layer + matmul(tokens, hidden, model.vocab_size)


def gpt_flops(model: GPT, batch: int, length: int) -> int:
  config = model.config
  tokens, width = batch * length, config.n_embd
  projections = (
    matmul(tokens, width, 3 * width)  # query, key, value
    + matmul(tokens, width, width)  # attention output
    + matmul(tokens, width, 4 * width)
    + matmul(tokens, 4 * width, width)
  )
  # Scores q k^T and the weighted sum of values, each 2 * length * width per token forward.
  attention = 3 * 2 * (2 * tokens * length * width)
  return config.n_layer * (projections + attention) + matmul(tokens, width, config.vocab_size)


def analytic_train_flops(model, batch: int, input_shape: tuple) -> int:
  """Model FLOPs of one training step of `model` on `batch` inputs of `input_shape` (no batch
  axis: an image's (h, w, c) or a token sequence's (length,))."""
  if isinstance(model, MLP):
    return mlp_flops(model, batch, input_shape)
  if isinstance(model, CNN):
    return cnn_flops(model, batch, input_shape)
  if isinstance(model, ResNet):
    return resnet_flops(model, batch, input_shape)
  if isinstance(model, RNNLM):
    return lstm_flops(model, batch, *input_shape)
  if isinstance(model, GPT):
    return gpt_flops(model, batch, *input_shape)
  raise TypeError(f"no FLOPs count for {type(model).__name__}")


def xla_train_flops(step, *args) -> tuple[float, bool]:
  """XLA's FLOPs of the jitted `step(*args)`, and whether that count is complete (no loop)."""
  cost = step.lower(*args).cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get("flops", 0.0)) if cost else 0.0
  return flops, not _has_loop(jax.make_jaxpr(step)(*args).jaxpr)


def _has_loop(jaxpr) -> bool:
  """Whether `jaxpr` runs a scan or while loop (the lowering's own loops, e.g. of the random
  number generator, do not count: XLA counts those few FLOPs once, which does not matter)."""
  for eqn in jaxpr.eqns:
    if eqn.primitive.name in ("scan", "while"):
      return True
    if any(_has_loop(sub) for sub in jax.extend.core.jaxprs_in_params(eqn.params)):
      return True
  return False


def flops_figures(workload, step_s: float, dtype: str, peak_override: float = 0.0) -> dict:
  """A workload's analytic and XLA FLOPs per step, and its achieved TFLOP/s and MFU at `step_s`
  seconds per step against its devices' peak (benchmarks.peaks)."""
  from benchmarks import peaks

  analytic = workload.analytic_flops()
  xla, complete = workload.xla_flops()
  peak, source = peaks.device_peak(dtype, peak_override, workload.num_devices)
  achieved = analytic / step_s / 1e12 if analytic else None
  return {
    "flops_per_step": analytic,
    "xla_flops_per_step": xla,
    "xla_flops_complete": complete,
    "tflops_per_s": achieved,
    "peak_tflops": peak,
    "peak_source": source,
    "mfu": achieved / peak if achieved and peak else None,
  }
