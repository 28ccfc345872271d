"""Where training metrics go: `metrics.jsonl`, TensorBoard event files and a PNG of the curves.

In a job of several processes only the writer (process 0, dljax.distributed) keeps them; the
others' logs are inert.
"""

import json
import math
import os

import numpy as np

from dljax import distributed


class MetricsLog:
  """Appends `{"step", "split", **metrics}` records; on resume, drops records past the checkpoint.

  Records after the restored step belong to a run whose state was lost, and the resumed run writes
  them again, so keeping them would duplicate steps in every curve.
  """

  def __init__(self, workdir: str, resume_step: int = 0):
    from tensorboardX import SummaryWriter

    self.path = os.path.join(workdir, "metrics.jsonl")
    self.records = []
    self._tb = None
    if not distributed.is_writer():
      return
    if os.path.exists(self.path):
      with open(self.path) as f:
        self.records = [r for r in map(json.loads, f) if r["step"] <= resume_step]
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({k for r in self.records for k in r if k not in ("step", "split")})
    if not names:
      return
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
      for split in sorted({r["split"] for r in self.records if name in r}):
        pts = np.array(
          [(r["step"], r[name]) for r in self.records if r["split"] == split and name in r]
        )
        ax.plot(pts[:, 0], pts[:, 1], marker="o" if len(pts) < 20 else None, label=split)
      ax.set_title(name)
      ax.set_xlabel("step")
      ax.legend()
    for ax in list(axes.flat)[len(names) :]:
      ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
