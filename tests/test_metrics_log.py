"""The metrics log writes TensorBoard files without importing PyTorch (tensorboardX would, at
every run's start where PyTorch is installed), and PyTorch stays importable after it."""

import os
import subprocess
import sys

from conftest import REPO

FAKE_TORCH = "import os\nopen(os.environ['TORCH_IMPORTED'], 'w').close()\n__version__ = 'fake'\n"

CHECK = """
import os, sys
from dljax.metrics_log import MetricsLog
log = MetricsLog(sys.argv[1])
log.write(1, "train", {"loss": 0.5})
log.close()
assert os.listdir(os.path.join(sys.argv[1], "tensorboard"))
assert not os.path.exists(os.environ["TORCH_IMPORTED"]), "tensorboardX imported torch"
import torch
assert torch.__version__ == "fake" and os.path.exists(os.environ["TORCH_IMPORTED"])
"""


def test_the_metrics_log_does_not_import_pytorch_and_leaves_it_importable(tmp_path):
  (tmp_path / "site" / "torch").mkdir(parents=True)
  (tmp_path / "run").mkdir()
  (tmp_path / "site" / "torch" / "__init__.py").write_text(FAKE_TORCH)
  env = {"PYTHONPATH": f"{tmp_path / 'site'}:{REPO}", "TORCH_IMPORTED": str(tmp_path / "flag")}
  result = subprocess.run(
    [sys.executable, "-c", CHECK, str(tmp_path / "run")],
    cwd=REPO,
    env={**os.environ, **env},
    capture_output=True,
    text=True,
    timeout=120,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-3000:]
