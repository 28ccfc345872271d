"""The basics chapter's figures: decision-boundary frames (two moons) and the comparison plot."""

import json
import os

import numpy as np

from dljax.metrics_log import import_pyplot

GRID_SIZE = 150  # points per side of the grid the decision boundary is evaluated on


def plot_decision_boundary(path: str, predict, test: dict, step: int):
  """The predicted probability of class 1 over the plane, its 0.5 contour and the test points.

  `predict`: points [n, 2] -> probabilities [n].
  """
  plt = import_pyplot()
  points, labels = test["image"], test["label"]
  low, high = points.min(0) - 0.5, points.max(0) + 0.5
  xs, ys = np.linspace(low[0], high[0], GRID_SIZE), np.linspace(low[1], high[1], GRID_SIZE)
  grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2).astype(np.float32)
  probability = np.asarray(predict(grid)).reshape(GRID_SIZE, GRID_SIZE)
  accuracy = np.mean((np.asarray(predict(points)) > 0.5) == labels)
  fig, ax = plt.subplots(figsize=(3.6, 3.0))
  ax.contourf(xs, ys, probability, levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.6)
  ax.contour(xs, ys, probability, levels=[0.5], colors="k", linewidths=1)
  ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="RdBu", s=4, edgecolors="none")
  ax.set(title=f"step {step}: test accuracy {100 * accuracy:.1f} %", xticks=[], yticks=[])
  ax.title.set_fontsize(9)
  fig.tight_layout()
  fig.savefig(path, dpi=60)
  plt.close(fig)


def plot_comparison(workdir: str, names: list[str]):
  """WORKDIR/comparison.png: every variant's training loss and test accuracy, from metrics.jsonl."""
  plt = import_pyplot()
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  fig, (loss_ax, accuracy_ax) = plt.subplots(1, 2, figsize=(9, 3.6))
  for i, name in enumerate(names):
    style = {"color": plt.cm.tab10(i % 10), "linestyle": "-" if i < 10 else "--"}
    train = np.array(
      [
        (r["step"], r[f"{name}_loss"])
        for r in records
        if r["split"] == "train" and f"{name}_loss" in r
      ]
    )
    evals = np.array(
      [
        (r["step"], r[f"{name}_test_accuracy"])
        for r in records
        if r["split"] == "eval" and f"{name}_test_accuracy" in r
      ]
    )
    if len(train):
      loss_ax.plot(train[:, 0], train[:, 1], label=name, **style)
    if len(evals):
      accuracy_ax.plot(
        evals[:, 0],
        100 * evals[:, 1],
        marker="o",
        markersize=3,
        label=f"{name} ({100 * evals[-1, 1]:.1f} %)",
        **style,
      )
  loss_ax.set(title="training loss", xlabel="step", yscale="log")
  accuracy_ax.set(title="test accuracy (%)", xlabel="step")
  accuracy_ax.legend(fontsize=7, loc="lower right")
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, "comparison.png"), dpi=70)
  plt.close(fig)
