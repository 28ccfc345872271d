"""The sequence chapter on the spine: smoke configs end to end, generation from a run directory."""

import json
import os
import re

import pytest

from conftest import config_path, load_config, run_module
from dljax.errors import DljaxError
from dljax.tasks import train


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory, request):
  from conftest import SHAKESPEARE
  if not os.path.exists(SHAKESPEARE):
    pytest.skip(f"corpus not found at {SHAKESPEARE} (the shared/ folder beside the checkout)")
  workdir = tmp_path_factory.mktemp("gpt")
  summary = train(load_config("shakespeare_gpt", "smoke", dataset=f"text:{SHAKESPEARE}"),
                  str(workdir))
  return workdir, summary


def test_gpt_smoke_trains_logs_and_samples(gpt_run):
  workdir, summary = gpt_run
  assert summary["steps"] == 20 and summary["final"]["val_loss"] < 4.2  # log(65) = 4.17
  assert sorted(os.listdir(workdir / "samples")) == ["step_000010.txt", "step_000020.txt"]
  assert len(open(workdir / "samples" / "step_000020.txt").read()) == 1 + 40
  assert json.load(open(workdir / "summary.json"))["final"] == summary["final"]


def test_lstm_smoke_trains(shakespeare_path, tmp_path):
  summary = train(load_config("shakespeare_lstm", "smoke", dataset=f"text:{shakespeare_path}"),
                  str(tmp_path))
  assert summary["steps"] == 20 and summary["final"]["val_loss"] < 4.2


def test_generate_cli_needs_only_the_run_directory(gpt_run):
  workdir, _ = gpt_run
  out = run_module("experiments.generate", f"--workdir={workdir}", "--prompt=ROMEO:",
                   "--num_tokens=30", "--temperature=0")
  assert out.returncode == 0, out.stderr
  assert out.stdout.startswith("ROMEO:") and len(out.stdout.rstrip("\n")) >= 6
  again = run_module("experiments.generate", f"--workdir={workdir}", "--prompt=ROMEO:",
                     "--num_tokens=30", "--temperature=0")
  assert again.stdout == out.stdout  # greedy decoding is deterministic
  # Past the model's 16-character context the window slides instead of failing.
  long = run_module("experiments.generate", f"--workdir={workdir}", "--num_tokens=50")
  assert long.returncode == 0, long.stderr


@pytest.mark.parametrize("args,message", [
    (["--prompt=ROMEO{}"], "characters not in the vocabulary: '{}'"),
    (["--num_tokens=0"], "--num_tokens must be at least 1"),
    (["--num=4"], "--num asks for images, but .* holds a language_model run"),
])
def test_generate_bad_input(gpt_run, args, message):
  workdir, _ = gpt_run
  out = run_module("experiments.generate", f"--workdir={workdir}", *args)
  assert out.returncode == 2 and re.search(message, out.stderr) and "Traceback" not in out.stderr


def test_generate_without_checkpoint_says_how_to_train(tmp_path):
  out = run_module("experiments.generate", f"--workdir={tmp_path}")
  assert out.returncode == 2 and "no checkpoint" in out.stderr and "experiments.train" in out.stderr


def test_block_size_beyond_the_text_is_refused(tmp_path):
  corpus = tmp_path / "tiny.txt"
  corpus.write_text("to be or not to be, " * 20)
  config = load_config("shakespeare_gpt", "smoke", dataset=f"text:{corpus}", block_size=64)
  with pytest.raises(DljaxError, match="block_size=64 needs more than 40 validation characters"):
    train(config, str(tmp_path / "run"))


def test_empty_text_file_is_refused(tmp_path):
  corpus = tmp_path / "empty.txt"
  corpus.write_text("")
  out = run_module("experiments.train", f"--config={config_path('shakespeare_gpt')}:smoke",
                   f"--workdir={tmp_path / 'run'}", f"--config.dataset=text:{corpus}")
  assert out.returncode == 2 and "is empty" in out.stderr
