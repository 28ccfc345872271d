"""The sequence chapter on the spine: smoke configs end to end, generation from a run directory."""

import json
import os
import re

import jax
import pytest
from conftest import config_path, load_config, run_forked, run_module
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from dljax import loop, parallel
from dljax.errors import DljaxError
from dljax.tasks import build_experiment, loop_options, train


def train_from_untrained(config, workdir):
  """Trains `config` in `workdir`; returns its summary and the untrained model's val_loss.

  ln(vocabulary size) is no yardstick: an untrained model is already close to it, and a run that
  learns nothing ends there too. The step-0 loss comes from the experiment that is then trained.
  """
  mesh = parallel.make_data_mesh(config.num_devices)
  with jax.set_mesh(mesh):
    experiment = build_experiment(config, mesh)
    initial = jax.jit(experiment.init_state, out_shardings=NamedSharding(mesh, P()))()
    untrained = experiment.evaluate(initial)["val_loss"]
    return loop.run(experiment, loop_options(config), str(workdir)), untrained


# 20 smoke steps lower the validation loss by 0.08-0.12 nats (tiny-shakespeare: GPT 4.187 -> 4.085,
# LSTM 4.175 -> 4.097; the stand-in corpus: 3.935 -> 3.820, 3.933 -> 3.854); with a learning rate
# of 0 it stays where it started.
MIN_IMPROVEMENT = 0.03


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory, corpus_path):
  workdir = tmp_path_factory.mktemp("gpt")
  summary, untrained = train_from_untrained(
    load_config("shakespeare_gpt", "smoke", dataset=f"text:{corpus_path}"), workdir
  )
  return workdir, summary, untrained


def test_gpt_smoke_learns_logs_and_samples(gpt_run):
  workdir, summary, untrained = gpt_run
  assert summary["steps"] == 20
  assert summary["final"]["val_loss"] < untrained - MIN_IMPROVEMENT
  assert sorted(os.listdir(workdir / "samples")) == ["step_000010.txt", "step_000020.txt"]
  assert len((workdir / "samples" / "step_000020.txt").read_text()) == 1 + 40
  assert json.loads((workdir / "summary.json").read_text())["final"] == summary["final"]


def test_lstm_smoke_learns(corpus_path, tmp_path):
  summary, untrained = train_from_untrained(
    load_config("shakespeare_lstm", "smoke", dataset=f"text:{corpus_path}"), tmp_path
  )
  assert summary["steps"] == 20
  assert summary["final"]["val_loss"] < untrained - MIN_IMPROVEMENT


def test_generate_cli_needs_only_the_run_directory(gpt_run):
  workdir, _, _ = gpt_run
  out = run_module(
    "experiments.generate",
    f"--workdir={workdir}",
    "--prompt=ROMEO:",
    "--num_tokens=30",
    "--temperature=0",
  )
  assert out.returncode == 0, out.stderr
  assert out.stdout.startswith("ROMEO:") and len(out.stdout) == len("ROMEO:") + 30 + 1  # + "\n"
  again = run_module(
    "experiments.generate",
    f"--workdir={workdir}",
    "--prompt=ROMEO:",
    "--num_tokens=30",
    "--temperature=0",
    "--step=20",
  )
  assert again.stdout == out.stdout  # the newest step; greedy decoding is deterministic
  # Past the model's 16-character context the window slides instead of failing.
  long = run_module("experiments.generate", f"--workdir={workdir}", "--num_tokens=50")
  assert long.returncode == 0, long.stderr
  assert len(long.stdout) == len("\n") + 50 + 1


# (arguments, the error they must name) for generate on the trained GPT run.
BAD_GENERATE_INPUTS = [
  (["--prompt=ROMEO{}"], "characters not in the vocabulary: '{}'"),
  (["--num_tokens=0"], "--num_tokens must be at least 1"),
  (["--num=4"], "--num asks for images, but a language_model run samples text"),
  (["--step=15"], "no checkpoint for step 15 in .*; its steps are 10, 20"),
  (["--temperature=nan"], "--temperature must be a finite number >= 0"),
  (["--temperature=-1"], "--temperature must be a finite number >= 0"),
  (["--top_k=-1"], "--top_k must be >= 0"),
  (["--top_p=nan"], r"--top_p must be in \[0, 1\]"),
]


def test_generate_bad_input(gpt_run):
  # Every case in one forked batch (conftest.run_forked): one interpreter start, not eight.
  workdir, _, _ = gpt_run
  results = run_forked(
    "experiments.generate", [[f"--workdir={workdir}", *args] for args, _ in BAD_GENERATE_INPUTS]
  )
  assert len(results) == len(BAD_GENERATE_INPUTS)
  for (args, message), (code, stderr) in zip(BAD_GENERATE_INPUTS, results):
    assert code == 2 and "Traceback" not in stderr, (args, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(f"error: .*{message}.*", lines[0]), (args, stderr)


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
  out = run_module(
    "experiments.train",
    f"--config={config_path('shakespeare_gpt')}:smoke",
    f"--workdir={tmp_path / 'run'}",
    f"--config.dataset=text:{corpus}",
  )
  assert out.returncode == 2 and "is empty" in out.stderr
