"""What a benchmark result carries besides its numbers (device, versions) and how it is written."""

import importlib.metadata
import json
import platform


def versions() -> dict:
  """Python and the versions of the packages a result depends on (None: not installed)."""
  found = {"python": platform.python_version()}
  for package in ("jax", "jaxlib", "flax", "optax", "torch"):
    try:
      found[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      found[package] = None
  return found


def device() -> str:
  import jax

  return f"{jax.device_count()} x {jax.devices()[0].device_kind} ({jax.default_backend()})"


def write_json(path: str, result: dict):
  with open(path, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")


def ratio_chart(rows: list[dict], title: str, path: str):
  """A bar chart of PyTorch's step time over dljax's per model (above 1: dljax faster)."""
  from dljax.metrics_log import import_pyplot

  plt = import_pyplot()
  columns = [("ratio_eager", "PyTorch eager"), ("ratio_compile", "torch.compile")]
  fig, ax = plt.subplots(figsize=(1.6 * len(rows) + 2, 3.6))
  width = 0.38
  for i, (key, label) in enumerate(columns):
    xs = [j + (i - 0.5) * width for j in range(len(rows))]
    values = [r.get(key) or 0.0 for r in rows]
    bars = ax.bar(xs, values, width, label=label)
    ax.bar_label(bars, [f"{v:.2f}" if v else "n/a" for v in values], fontsize=8)
  ax.axhline(1.0, color="black", linewidth=0.8)
  ax.set_xticks(range(len(rows)), [f"{r['model']}\n(batch {r['batch']})" for r in rows])
  ax.set_ylabel("PyTorch ms / dljax ms")
  ax.set_title(title, fontsize=9)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
