"""PyTorch twins of the dljax models, for the side-by-side benchmark (benchmarks.compare).

`twin(flax_model, input_shape)` builds the PyTorch module from the Flax module's own fields, so
both have the same layers, widths and initialisation scheme where it matters for speed (none of
it matters for the numbers, which are times). `trainable_params` counts what the optimizer
updates; the suite asserts it equals the dljax model's parameter count. Images are NCHW here
(PyTorch's layout) and NHWC in dljax (Flax's).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from dljax.models.cnn import CNN as FlaxCNN
from dljax.models.gpt import GPT as FlaxGPT
from dljax.models.mlp import MLP as FlaxMLP
from dljax.models.resnet import ResNet as FlaxResNet
from dljax.models.rnn_lm import RNNLM as FlaxRNNLM


class MLP(nn.Module):
  def __init__(self, in_features: int, hidden, num_classes: int, dropout: float):
    super().__init__()
    layers, width = [nn.Flatten()], in_features
    for h in hidden:
      layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
      width = h
    self.net = nn.Sequential(*layers, nn.Linear(width, num_classes))

  def forward(self, x):
    return self.net(x)


class CNN(nn.Module):
  """dljax.models.cnn.CNN: 3x3 'same' conv, ReLU, 2x2 pool per stage; dense, ReLU, dropout."""

  def __init__(self, image_shape, features, dense: int, num_classes: int, dropout: float, pool):
    super().__init__()
    h, w, channels = image_shape
    stages = []
    for width in features:
      stages += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
      stages.append(nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2))
      h, w, channels = h // 2, w // 2, width
    self.features = nn.Sequential(*stages, nn.Flatten())
    self.head = nn.Sequential(
      nn.Linear(h * w * channels, dense),
      nn.ReLU(),
      nn.Dropout(dropout),
      nn.Linear(dense, num_classes),
    )

  def forward(self, x):
    return self.head(self.features(x))


class BasicBlock(nn.Module):
  def __init__(self, in_channels: int, features: int, stride: int):
    super().__init__()
    self.conv1 = nn.Conv2d(in_channels, features, 3, stride, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(features, momentum=0.1, eps=1e-5)  # Flax momentum 0.9
    self.conv2 = nn.Conv2d(features, features, 3, padding=1, bias=False)
    self.bn2 = nn.BatchNorm2d(features, momentum=0.1, eps=1e-5)
    nn.init.zeros_(self.bn2.weight)  # every block starts as the identity, as in dljax
    self.shortcut = nn.Identity()
    if stride != 1 or in_channels != features:
      self.shortcut = nn.Sequential(
        nn.Conv2d(in_channels, features, 1, stride, bias=False), nn.BatchNorm2d(features)
      )

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    return F.relu(self.shortcut(x) + self.bn2(self.conv2(y)))


class ResNet(nn.Module):
  def __init__(self, in_channels: int, stage_sizes, stage_features, num_classes: int):
    super().__init__()
    width = stage_features[0]
    layers = [nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)]
    layers.append(nn.ReLU())
    for stage, (blocks, features) in enumerate(zip(stage_sizes, stage_features)):
      for block in range(blocks):
        layers.append(BasicBlock(width, features, 2 if stage > 0 and block == 0 else 1))
        width = features
    self.body = nn.Sequential(*layers)
    self.head = nn.Linear(width, num_classes)

  def forward(self, x):
    return self.head(self.body(x).mean(dim=(2, 3)))


class LSTMLM(nn.Module):
  """Embedding, a multi-layer nn.LSTM, a linear head: dljax.models.rnn_lm.RNNLM's shapes.

  PyTorch's LSTM keeps two bias vectors per layer (cuDNN's layout) where Flax keeps one; the
  second (`bias_hh`) is frozen at zero, so both train the same number of parameters.
  """

  def __init__(self, vocab_size: int, hidden: int, num_layers: int, dropout: float):
    super().__init__()
    self.embed = nn.Embedding(vocab_size, hidden)
    self.lstm = nn.LSTM(hidden, hidden, num_layers, batch_first=True, dropout=dropout)
    for layer in range(num_layers):
      bias = getattr(self.lstm, f"bias_hh_l{layer}")
      nn.init.zeros_(bias)
      bias.requires_grad_(False)
    self.head = nn.Linear(hidden, vocab_size)

  def forward(self, tokens):
    return self.head(self.lstm(self.embed(tokens))[0])


class CausalSelfAttention(nn.Module):
  def __init__(self, width: int, n_head: int, dropout: float, bias: bool):
    super().__init__()
    self.n_head = n_head
    self.c_attn = nn.Linear(width, 3 * width, bias=bias)
    self.c_proj = nn.Linear(width, width, bias=bias)
    self.dropout = nn.Dropout(dropout)

  def forward(self, x):
    batch, length, width = x.shape
    q, k, v = self.c_attn(x).split(width, dim=2)
    q, k, v = (t.view(batch, length, self.n_head, -1).transpose(1, 2) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return self.dropout(self.c_proj(y.transpose(1, 2).reshape(batch, length, width)))


class Block(nn.Module):
  def __init__(self, width: int, n_head: int, dropout: float, bias: bool):
    super().__init__()
    self.ln_1 = nn.LayerNorm(width, bias=bias)
    self.attn = CausalSelfAttention(width, n_head, dropout, bias)
    self.ln_2 = nn.LayerNorm(width, bias=bias)
    self.mlp = nn.Sequential(
      nn.Linear(width, 4 * width, bias=bias),
      nn.GELU(),
      nn.Linear(4 * width, width, bias=bias),
      nn.Dropout(dropout),
    )

  def forward(self, x):
    x = x + self.attn(self.ln_1(x))
    return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
  """nanoGPT's model.py: learned positions, pre-LayerNorm blocks, output tied to the embedding."""

  def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd, dropout, bias):
    super().__init__()
    self.wte = nn.Embedding(vocab_size, n_embd)
    self.wpe = nn.Parameter(torch.randn(block_size, n_embd) * 0.02)
    self.drop = nn.Dropout(dropout)
    self.blocks = nn.Sequential(*[Block(n_embd, n_head, dropout, bias) for _ in range(n_layer)])
    self.ln_f = nn.LayerNorm(n_embd, bias=bias)
    for name, p in self.named_parameters():
      if p.ndim == 2:
        std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("c_proj.weight") else 0.02
        nn.init.normal_(p, std=std)

  def forward(self, tokens):
    x = self.drop(self.wte(tokens) + self.wpe[: tokens.shape[1]])
    return F.linear(self.ln_f(self.blocks(x)), self.wte.weight)


def twin(model, input_shape: tuple) -> nn.Module:
  """The PyTorch module with the layer shapes of the Flax `model` on inputs of `input_shape`."""
  if isinstance(model, FlaxMLP):
    return MLP(math.prod(input_shape), model.hidden, model.num_classes, model.dropout)
  if isinstance(model, FlaxCNN):
    return CNN(
      input_shape, model.features, model.dense, model.num_classes, model.dropout, model.pool
    )
  if isinstance(model, FlaxResNet):
    return ResNet(input_shape[-1], model.stage_sizes, model.stage_features, model.num_classes)
  if isinstance(model, FlaxRNNLM) and model.cell_type == "lstm":
    return LSTMLM(model.vocab_size, model.hidden_size, model.num_layers, model.dropout)
  if isinstance(model, FlaxGPT):
    c = model.config
    return GPT(c.vocab_size, c.block_size, c.n_layer, c.n_head, c.n_embd, c.dropout, c.bias)
  raise TypeError(f"no PyTorch twin of {type(model).__name__}")


def trainable_params(module: nn.Module) -> int:
  return sum(p.numel() for p in module.parameters() if p.requires_grad)
