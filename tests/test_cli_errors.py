"""Bad command lines end in one clear error line (no traceback) and a non-zero exit status."""

import re

import pytest
from conftest import config_path, run_module

SMOKE = config_path("mnist_cnn") + ":smoke"


@pytest.mark.parametrize(
  "args,message",
  [
    (["--config.nonexistent=1"], "unknown config key 'nonexistent'"),
    (["--config.optimizer.lr=1"], "unknown config key 'optimizer.lr'.*optimizer.learning_rate"),
    (["--config.batch_size=abc"], "--config.batch_size=abc"),
    (["--config.model.name=vgg"], "unknown model 'vgg'; known models: cnn, .*gpt, gru"),
    (["--config.dataset=imagenet"], "unknown image dataset 'imagenet'.*mnist5k"),
    (["--config.optimizer.name=lion"], "unknown optimizer 'lion'"),
  ],
)
def test_bad_config_is_named(tmp_path, args, message):
  out = run_module("experiments.train", f"--config={SMOKE}", f"--workdir={tmp_path}", *args)
  assert out.returncode == 2
  assert "Traceback" not in out.stderr
  assert re.search(message, out.stderr), out.stderr


def test_unknown_variant_is_named(tmp_path):
  out = run_module(
    "experiments.train", f"--config={config_path('mnist_cnn')}:tiny", f"--workdir={tmp_path}"
  )
  assert out.returncode == 2 and "unknown variant 'tiny'" in out.stderr
