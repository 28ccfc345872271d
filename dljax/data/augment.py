"""Image augmentation that runs inside the jitted train step, per example, from a key."""

import jax
import jax.numpy as jnp


def random_crop(key, images, pad: int):
  """Zero-pads by `pad` pixels and crops back to size at a random offset (a random shift)."""
  n, h, w, c = images.shape
  padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  offsets = jax.random.randint(key, (n, 2), 0, 2 * pad + 1)
  crop = lambda image, o: jax.lax.dynamic_slice(image, (o[0], o[1], 0), (h, w, c))
  return jax.vmap(crop)(padded, offsets)


def random_flip(key, images):
  """Mirrors each image left-right with probability 1/2."""
  flip = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
  return jnp.where(flip, images[:, :, ::-1, :], images)


def augment(key, images, crop_pad: int = 0, flip: bool = False):
  crop_key, flip_key = jax.random.split(key)
  if crop_pad:
    images = random_crop(crop_key, images, crop_pad)
  if flip:
    images = random_flip(flip_key, images)
  return images
