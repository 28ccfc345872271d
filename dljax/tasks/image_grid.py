"""Figures of generative models: a batch of images as one grid, saved as a PNG or as GIF frames.

  save_grid(samples, "samples.png")                      # samples [N, H, W, C] in [0, 1]
  save_gif([samples_at_step[s] for s in steps], "training.gif")   # one grid per frame

C = 1 is saved as grayscale, C = 3 as RGB. Values are clipped to [0, 1] (a figure, not data).
"""

import math

import numpy as np
from PIL import Image

from dljax.errors import DljaxError


def make_grid(
  images, ncol: int | None = None, padding: int = 1, pad_value: float = 0.5
) -> np.ndarray:
  """images [N, H, W, C] -> one image [rows * (H + p) + p, ncol * (W + p) + p, C], row by row.

  ncol defaults to ceil(sqrt(N)) (a square grid); cells past N and the `padding` pixels between
  cells are `pad_value` (mid-gray, which shows against both black and white digits).
  """
  images = np.asarray(images, np.float32)
  if images.ndim != 4 or images.shape[-1] not in (1, 3) or not len(images):
    raise DljaxError(
      f"make_grid needs images [N, H, W, C] with N >= 1 and C = 1 (grayscale) or "
      f"3 (RGB), got shape {list(images.shape)}; add a channel axis with x[..., None]"
    )
  n, h, w, c = images.shape
  ncol = ncol or math.ceil(math.sqrt(n))
  if ncol < 1:
    raise DljaxError(f"ncol must be at least 1, got {ncol}")
  nrow = math.ceil(n / ncol)
  p = padding
  grid = np.full((nrow * (h + p) + p, ncol * (w + p) + p, c), pad_value, np.float32)
  for i, image in enumerate(np.clip(images, 0, 1)):
    top, left = p + (i // ncol) * (h + p), p + (i % ncol) * (w + p)
    grid[top : top + h, left : left + w] = image
  return grid


def _to_pil(grid: np.ndarray) -> Image.Image:
  pixels = np.round(np.clip(grid, 0, 1) * 255).astype(np.uint8)
  return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)


def save_grid(images, path: str, ncol: int | None = None) -> None:
  """Saves `images` [N, H, W, C] as one grid (see `make_grid`) in an image file (PNG by name)."""
  _to_pil(make_grid(images, ncol)).save(path)


def save_gif(frames, path: str, ncol: int | None = None, duration_ms: int = 200) -> None:
  """Saves an animated, looping GIF with one grid per frame.

  frames: a list of image batches [N, H, W, C] of one shape, e.g. samples from a fixed noise batch
  at successive checkpoints. Pillow merges consecutive identical frames into one longer frame.
  """
  if not frames or len({np.shape(f) for f in frames}) != 1:
    raise DljaxError(
      f"save_gif needs a non-empty list of image batches of one shape, got shapes "
      f"{sorted({np.shape(f) for f in frames})}; sample every frame from one "
      f"noise batch"
    )
  first, *rest = [_to_pil(make_grid(f, ncol)) for f in frames]
  first.save(path, save_all=True, append_images=rest, duration=duration_ms, loop=0)
