"""Figures of generative models: grid layout, PNG and GIF files that read back as written."""

import numpy as np
import pytest
from PIL import Image

from dljax.errors import DljaxError
from dljax.tasks.image_grid import make_grid, save_gif, save_grid


def test_grid_places_images_row_by_row_and_fills_the_rest():
  images = np.random.default_rng(0).uniform(size=(5, 4, 6, 1)).astype(np.float32)
  grid = make_grid(images, padding=1, pad_value=0.5)
  assert grid.shape == (2 * 5 + 1, 3 * 7 + 1, 1)  # ceil(sqrt(5)) = 3 columns, 2 rows
  np.testing.assert_array_equal(grid[1:5, 1:7], images[0])
  np.testing.assert_array_equal(grid[6:10, 8:14], images[4])  # row 1, column 1
  assert (grid[6:10, 15:21] == 0.5).all()  # the sixth cell is empty
  assert make_grid(images, ncol=5, padding=0).shape == (4, 30, 1)


@pytest.mark.parametrize("channels,mode", [(1, "L"), (3, "RGB")])
def test_png_reads_back_with_the_grid_size_and_pixels(tmp_path, channels, mode):
  images = np.random.default_rng(1).uniform(size=(6, 8, 8, channels))
  save_grid(images, tmp_path / "grid.png", ncol=3)
  png = Image.open(tmp_path / "grid.png")
  grid = make_grid(images, ncol=3)
  assert png.mode == mode and png.size == (grid.shape[1], grid.shape[0])
  pixels = np.asarray(png).reshape(grid.shape)
  np.testing.assert_array_equal(pixels, np.round(grid * 255).astype(np.uint8))


def test_gif_has_one_frame_per_batch_and_loops(tmp_path):
  rng = np.random.default_rng(2)
  frames = [rng.uniform(size=(4, 8, 8, 1)) for _ in range(3)]
  save_gif(frames, tmp_path / "run.gif", duration_ms=100)
  gif = Image.open(tmp_path / "run.gif")
  height, width, _ = make_grid(frames[0]).shape
  assert gif.n_frames == 3 and gif.size == (width, height) and gif.info["loop"] == 0
  gif.seek(2)
  np.testing.assert_array_equal(
    np.asarray(gif.convert("L")), np.round(make_grid(frames[2])[..., 0] * 255).astype(np.uint8)
  )


def test_bad_shapes_are_named(tmp_path):
  with pytest.raises(DljaxError, match=r"C = 1 .*got shape \[4, 8, 8\]"):
    make_grid(np.zeros((4, 8, 8)))
  with pytest.raises(DljaxError, match="one shape"):
    save_gif([np.zeros((4, 8, 8, 1)), np.zeros((9, 8, 8, 1))], tmp_path / "x.gif")
