"""Where training metrics go: `metrics.jsonl`, TensorBoard event files and PNGs of the curves.

In a job of several processes only the writer (process 0, dljax.distributed) keeps them; the
others' logs are inert.

`read_records` is the one reader of `metrics.jsonl` and `plot_records` the one way to draw it:
by default one panel per metric, one line per split; a task can name its own panels (`Curve`s,
optionally with a min-max band) and the axes' units (e.g. RL's env steps instead of steps).
"""

import dataclasses
import json
import math
import os
import sys

import numpy as np

from dljax import distributed


def read_records(workdir: str, up_to_step: float = math.inf) -> list[dict]:
  """The `{"step", "split", **metrics}` records of `workdir/metrics.jsonl` up to `up_to_step`."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [r for r in map(json.loads, f) if r["step"] <= up_to_step]


@dataclasses.dataclass(frozen=True)
class Curve:
  """One line of a panel: the metric `name` of the records of `split`, shaded between the
  metrics `band` (low, high) if given."""

  split: str
  name: str
  label: str
  band: tuple[str, str] | None = None


def import_pyplot():
  """matplotlib's pyplot on the Agg backend (no display), imported on first use: a few tenths of
  a second that runs without PNGs never pay."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  return plt


def plot_records(
  records: list[dict],
  path: str,
  panels: dict[str, list[Curve]] | None = None,
  step_scale: float = 1,
  xlabel: str = "step",
  ylabel: str = "",
):
  """`panels` ({title: curves}; default: one per metric, a line per split) as a PNG at `path`,
  with x = step * `step_scale`. Curves without records are left out, panels without any too."""
  plt = import_pyplot()
  if panels is None:
    names = sorted({k for r in records for k in r if k not in ("step", "split")})
    panels = {
      name: [
        Curve(split, name, split) for split in sorted({r["split"] for r in records if name in r})
      ]
      for name in names
    }
  points = {}  # title: [(curve, its records)], the curves with records only
  for title, curves in panels.items():
    lines = [(c, [r for r in records if r["split"] == c.split and c.name in r]) for c in curves]
    if lines := [(c, rs) for c, rs in lines if rs]:
      points[title] = lines
  if not points:
    return
  cols = min(3, len(points))
  rows = math.ceil(len(points) / cols)
  width, height = 4.5 * cols, 3.2 * rows  # inches: every panel the same size
  # Margins fixed in inches (room for tick labels, axis labels and titles) rather than
  # `tight_layout`, which measures every text and takes half the drawing time.
  margins = {"left": 0.9 / width, "right": 1 - 0.2 / width}
  margins |= {"bottom": 0.55 / height, "top": 1 - 0.35 / height, "wspace": 0.33, "hspace": 0.5}
  fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False, gridspec_kw=margins)
  for ax, (title, curves) in zip(axes.flat, points.items()):
    for curve, rs in curves:
      x = np.array([r["step"] for r in rs]) * step_scale
      y = np.array([r[curve.name] for r in rs])
      ax.plot(x, y, marker="o" if len(rs) < 20 else None, label=curve.label)
      if curve.band is not None:
        low, high = ([r[name] for r in rs] for name in curve.band)
        ax.fill_between(x, low, high, alpha=0.25)
    ax.set_title(title)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.legend()
  for ax in list(axes.flat)[len(points) :]:
    ax.axis("off")
  fig.savefig(path, dpi=80)
  plt.close(fig)


def summary_writer_class():
  """tensorboardX's `SummaryWriter`, imported without PyTorch.

  tensorboardX imports PyTorch whenever it is installed, only to accept torch tensors; dljax logs
  floats, and that import was a large part of a short run's start wherever PyTorch was installed
  (the `bench` extra; measured in docs/benchmarks.md).
  """
  if "tensorboardX" in sys.modules or "torch" in sys.modules:
    from tensorboardX import SummaryWriter

    return SummaryWriter
  sys.modules["torch"] = None  # `import torch` raises ImportError while this is set
  try:
    from tensorboardX import SummaryWriter
  finally:
    del sys.modules["torch"]
  return SummaryWriter


class MetricsLog:
  """Appends `{"step", "split", **metrics}` records; on resume, drops records past the checkpoint.

  Records after the restored step belong to a run whose state was lost, and the resumed run writes
  them again, so keeping them would duplicate steps in every curve.
  """

  def __init__(self, workdir: str, resume_step: int = 0):
    SummaryWriter = summary_writer_class()
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.records = []
    self._tb = None
    if not distributed.is_writer():
      return
    self.records = read_records(workdir, resume_step)
    with open(self.path, "w") as f:
      f.writelines(json.dumps(r) + "\n" for r in self.records)
    self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"), purge_step=resume_step + 1)

  def write(self, step: int, split: str, metrics: dict[str, float]):
    if self._tb is None:
      return
    record = {"step": step, "split": split, **{k: float(v) for k, v in metrics.items()}}
    self.records.append(record)
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    for name, value in metrics.items():
      self._tb.add_scalar(f"{split}/{name}", float(value), step)

  def close(self):
    if self._tb is not None:
      self._tb.close()

  def plot(self, path: str):
    """One panel per metric, one line per split."""
    plot_records(self.records, path)
