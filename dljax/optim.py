"""Optimizers and learning-rate schedules built from a config's optimizer block (optax).

The block's fields, their defaults and meaning are `dljax.config.base_config().optimizer`.
"""

import jax
import ml_collections
import optax

from dljax.errors import DljaxError, bad_value, unknown_name

SCHEDULES = ("constant", "cosine", "linear")
OPTIMIZERS = ("adamw", "adam", "sgd")
# field: (whether a value is valid, the rule the error states)
_RANGES = {
  "learning_rate": (lambda v: v >= 0, "at least 0"),
  "warmup_steps": (lambda v: v >= 0, "at least 0"),
  "decay_steps": (lambda v: v >= 0, "at least 0 (0: the whole run)"),
  "end_learning_rate_factor": (lambda v: 0 <= v <= 1, "in [0, 1]"),
  "b1": (lambda v: 0 <= v < 1, "in [0, 1)"),
  "b2": (lambda v: 0 <= v < 1, "in [0, 1)"),
  "momentum": (lambda v: 0 <= v < 1, "in [0, 1) (0: none)"),
  "weight_decay": (lambda v: v >= 0, "at least 0"),
  "grad_clip_norm": (lambda v: v >= 0, "at least 0 (0: no clipping)"),
}


def check_ranges(cfg: ml_collections.ConfigDict, name: str = "optimizer"):
  """Refuses values that would train backwards or blow up (`name`: the block's config path)."""
  for field, (valid, rule) in _RANGES.items():
    if field in cfg and not valid(cfg[field]):
      raise bad_value(f"{name}.{field}", cfg[field], rule)


def make_schedule(
  cfg: ml_collections.ConfigDict, total_steps: int, name: str = "optimizer"
) -> optax.Schedule:
  """Linear warmup to `learning_rate`, then constant, cosine or linear decay.

  Decay runs over `decay_steps` (0: the whole run) down to
  `learning_rate * end_learning_rate_factor`, as nanoGPT's `lr_decay_iters`/`min_lr` do.
  """
  if cfg.schedule not in SCHEDULES:
    raise unknown_name("learning-rate schedule", cfg.schedule, SCHEDULES)
  peak, warmup = cfg.learning_rate, cfg.warmup_steps
  decay_steps = cfg.decay_steps or total_steps
  if warmup >= decay_steps and cfg.schedule != "constant":
    raise DljaxError(
      f"{name}.warmup_steps={warmup} must be smaller than the decay length "
      f"({decay_steps} steps); lower it or train longer"
    )
  end = peak * cfg.end_learning_rate_factor
  warmup_fn = optax.linear_schedule(0.0, peak, warmup) if warmup else None
  if cfg.schedule == "constant":
    main = optax.constant_schedule(peak)
  elif cfg.schedule == "cosine":
    main = optax.cosine_decay_schedule(
      peak, decay_steps - warmup, alpha=end / peak if peak else 0.0
    )
  else:
    main = optax.linear_schedule(peak, end, decay_steps - warmup)
  return optax.join_schedules([warmup_fn, main], [warmup]) if warmup_fn else main


def matrices_only(params):
  """Weight-decay mask: decay kernels and embeddings, not biases or norm scales (nanoGPT's rule)."""
  return jax.tree.map(lambda p: p.ndim >= 2, params)


def make_optimizer(
  cfg: ml_collections.ConfigDict, total_steps: int, name: str = "optimizer"
) -> optax.GradientTransformation:
  """The optimizer named by `cfg.name`, with its schedule and optional global-norm clipping
  (`name`: the block's config path, for error messages)."""
  check_ranges(cfg, name)
  lr = make_schedule(cfg, total_steps, name)
  if cfg.name == "adamw":
    opt = optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay, mask=matrices_only)
  elif cfg.name == "adam":
    opt = optax.adam(lr, b1=cfg.b1, b2=cfg.b2)
  elif cfg.name == "sgd":
    opt = optax.chain(
      optax.add_decayed_weights(cfg.weight_decay, mask=matrices_only),
      optax.sgd(lr, momentum=cfg.momentum or None, nesterov=cfg.nesterov),
    )
  else:
    raise unknown_name("optimizer", cfg.name, OPTIMIZERS)
  if cfg.grad_clip_norm:
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), opt)
  return opt
