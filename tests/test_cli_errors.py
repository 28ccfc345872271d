"""Bad input to the entry scripts ends in one `error: ...` line on stderr, exit status 2, no
traceback, and WORKDIR as it was (nothing created, changed or removed).

Each case is a real `python -m experiments.train|generate ARGS` run, forked from one process that
imported the heavy libraries once (conftest.run_forked).
"""

import hashlib
import os
import pathlib
import re
import shutil
import subprocess

import jax
import numpy as np
import pytest
from conftest import config_path, load_config, run_forked

from dljax import parallel
from dljax.checkpoint import Checkpointer
from dljax.tasks import build_experiment

CNN = config_path("mnist_cnn") + ":smoke"
GPT = config_path("shakespeare_gpt") + ":smoke"
PPO = config_path("cartpole_ppo") + ":smoke"
GPT_ON_CORPUS = [f"--config={GPT}", "--config.dataset=text:{corpus}"]  # a later flag overrides

# (id, WORKDIR kind, arguments ({tmp}: a scratch directory, {corpus}: the test corpus), the error
# it names)
# WORKDIR kinds: new (absent), file, under_file, empty (''), proc (cannot be created),
# read_only / read_only_new (an existing or absent directory on a read-only file system: root
# may write anywhere else), cnn (an untrained mnist_cnn checkpoint), lm (shakespeare_gpt), vae
# (mnist_vae).
TRAIN_CASES = [
  ("config_missing", "new", ["--config=experiments/configs/nope.py"], "cannot load --config: .*No such file"),
  ("config_not_python", "new", ["--config=README.md"], "README.md is not a Python config file"),
  ("config_directory", "new", ["--config=experiments/configs"], "Is a directory"),
  ("variant_unknown", "new", [f"--config={CNN[:-6]}:tiny"], "unknown variant 'tiny'; known variants: smoke"),
  ("flag_unknown", "new", [f"--config={CNN}", "--epochs=3"], "Unknown command line flag 'epochs'"),
  ("workdir_missing", None, [f"--config={CNN}"], "--workdir must have a value other than None"),
  ("key_unknown", "new", [f"--config={CNN}", "--config.nonexistent=1"], "unknown config key 'nonexistent'"),
  ("key_misspelt", "new", [f"--config={CNN}", "--config.optimizer.lr=1"], "unknown config key 'optimizer.lr'.*optimizer.learning_rate"),
  ("type_int_text", "new", [f"--config={CNN}", "--config.batch_size=abc"], "--config.batch_size=abc"),
  ("type_int_float", "new", [f"--config={CNN}", "--config.batch_size=1.5"], "--config.batch_size=1.5: invalid literal for int"),
  ("type_bool", "new", [f"--config={CNN}", "--config.quiet=maybe"], "Non-boolean argument to boolean flag"),
  ("task_unknown", "new", [f"--config={CNN}", "--config.task=segmentation"], "unknown task 'segmentation'"),
  ("model_unknown", "new", [f"--config={CNN}", "--config.model.name=vgg"], "unknown model 'vgg'; known models: cnn, "),
  ("dataset_unknown", "new", [f"--config={CNN}", "--config.dataset=imagenet"], "unknown image dataset 'imagenet'.*mnist5k"),
  ("dataset_not_fetched", "new", [f"--config={CNN}", "--config.dataset=mnist", "--config.data_dir={tmp}"], "dataset 'mnist' is not fetched .*: python -m dljax.data.fetch mnist --data_dir "),
  ("optimizer_unknown", "new", [f"--config={CNN}", "--config.optimizer.name=lion"], "unknown optimizer 'lion'"),
  ("schedule_unknown", "new", [f"--config={CNN}", "--config.optimizer.schedule=step"], "unknown learning-rate schedule 'step'"),
  ("dtype_unknown", "new", [f"--config={CNN}", "--config.dtype=float16"], "unknown dtype 'float16'"),
  ("batch_size_zero", "new", [f"--config={CNN}", "--config.batch_size=0"], "batch_size=0 is invalid: it must be a positive multiple"),
  ("batch_size_too_big", "new", [f"--config={CNN}", "--config.batch_size=100000"], "batch_size=100000 is larger than the dataset"),
  ("batch_size_indivisible", "new", [f"--config={CNN}", "--config.batch_size=63"], "batch_size=63 is not divisible by the 2 devices"),
  ("eval_batch_size_zero", "new", [f"--config={CNN}", "--config.eval_batch_size=0"], "eval_batch_size=0 is invalid: it must be at least 1"),
  ("num_steps_negative", "new", [f"--config={CNN}", "--config.num_steps=-5"], "num_steps=-5 is invalid: it must be at least 0"),
  ("steps_per_call_zero", "new", [f"--config={CNN}", "--config.steps_per_call=0"], "steps_per_call=0 is invalid: it must be at least 1"),
  ("steps_per_call_not_dividing", "new", [f"--config={CNN}", "--config.steps_per_call=3"], r"num_steps=20 is not a multiple of the 3 steps each train-step call runs \(steps_per_call\)"),
  ("log_every_zero", "new", [f"--config={CNN}", "--config.log_every_steps=0"], "log_every_steps=0 is invalid"),
  ("eval_every_negative", "new", [f"--config={CNN}", "--config.eval_every_steps=-10"], "eval_every_steps=-10 is invalid"),
  ("checkpoint_every_negative", "new", [f"--config={CNN}", "--config.checkpoint_every_steps=-1"], "checkpoint_every_steps=-1 is invalid"),
  ("keep_checkpoints_zero", "new", [f"--config={CNN}", "--config.keep_checkpoints=0"], "keep_checkpoints=0 is invalid: it must be at least 1"),
  ("cpu_devices_negative", "new", [f"--config={CNN}", "--config.cpu_devices=-2"], "cpu_devices=-2 is invalid"),
  ("num_devices_too_many", "new", [f"--config={CNN}", "--config.num_devices=64"], "num_devices=64 but only \\d+ cpu devices exist"),
  ("learning_rate_negative", "new", [f"--config={CNN}", "--config.optimizer.learning_rate=-1"], "optimizer.learning_rate=-1.0 is invalid: it must be at least 0"),
  ("warmup_negative", "new", [f"--config={CNN}", "--config.optimizer.warmup_steps=-1"], "optimizer.warmup_steps=-1 is invalid"),
  ("warmup_too_long", "new", [f"--config={CNN}", "--config.optimizer.warmup_steps=50"], "optimizer.warmup_steps=50 must be smaller than the decay length"),
  ("beta1_above_one", "new", [f"--config={CNN}", "--config.optimizer.b1=1.5"], "optimizer.b1=1.5 is invalid: it must be in \\[0, 1\\)"),
  ("grad_clip_negative", "new", [f"--config={CNN}", "--config.optimizer.grad_clip_norm=-1"], "optimizer.grad_clip_norm=-1.0 is invalid"),
  ("data_placement_unknown", "new", [f"--config={CNN}", "--config.data_placement=spread"], "data_placement='spread' is invalid: it must be 'replicated' or 'sharded'"),
  ("batch_size_too_big_sharded", "new", [f"--config={CNN}", "--config.data_placement=sharded", "--config.batch_size=1600"], "batch_size=1600 takes 800 examples from each of the 2 devices, which hold 718"),
  ("crop_pad_negative", "new", [f"--config={CNN}", "--config.augment.crop_pad=-1"], "augment.crop_pad=-1 is invalid"),
  ("text_file_missing", "new", [*GPT_ON_CORPUS, "--config.dataset=text:/nonexistent/corpus.txt"], "text corpus not found: /nonexistent/corpus.txt"),
  ("text_dataset_unknown", "new", [*GPT_ON_CORPUS, "--config.dataset=wikipedia"], "unknown text dataset 'wikipedia'"),
  ("block_size_zero", "new", [*GPT_ON_CORPUS, "--config.block_size=0"], "block_size=0 is invalid: it must be at least 1"),
  ("block_size_beyond_text", "new", [*GPT_ON_CORPUS, "--config.block_size=10000000"], "block_size=10000000 needs more than"),
  ("state_sharding_unknown", "new", [*GPT_ON_CORPUS, "--config.state_sharding=zero3"], "unknown state sharding 'zero3'; known state shardings: fsdp, replicated"),
  ("sample_temperature_negative", "new", [*GPT_ON_CORPUS, "--config.sample_temperature=-1"], "sample_temperature=-1.0 is invalid"),
  ("env_unknown", "new", [f"--config={PPO}", "--config.env=Pong-v5"], "unknown environment 'Pong-v5'; known environments: CartPole-v1"),
  ("num_envs_zero", "new", [f"--config={PPO}", "--config.num_envs=0"], "num_envs=0 must be at least 1"),
  ("gym_env_with_seeds", "new", [f"--config={PPO}", "--config.env=gym:CartPole-v1"], "stepped on the host, one seed at a time"),
  ("workdir_is_a_file", "file", [f"--config={CNN}"], "--workdir .* exists and is not a directory"),
  ("workdir_under_a_file", "under_file", [f"--config={CNN}"], "cannot create --workdir .*: Not a directory"),
  ("workdir_empty", "empty", [f"--config={CNN}"], "--workdir is empty"),
  ("workdir_cannot_be_created", "proc", [f"--config={CNN}"], "cannot create --workdir /proc/"),
  ("workdir_read_only_new", "read_only_new", [f"--config={CNN}"], "cannot create --workdir .*: Read-only file system"),
  ("workdir_read_only", "read_only", [f"--config={CNN}"], "cannot write in --workdir .*: Read-only file system"),
  ("workdir_of_another_experiment", "cnn", [f"--config={config_path('mnist_mlp')}:smoke"], "holds checkpoints of a different experiment"),
]  # fmt: skip

GENERATE_CASES = [
  ("no_checkpoint", "new", [], "no checkpoint in .*; train a model there first"),
  ("workdir_is_a_file", "file", [], "no checkpoint in "),
  ("step_missing", "lm", ["--step=7"], "there is no checkpoint for step 7 in .*; its steps are 10"),
  ("samples_nothing", "cnn", [], "is a classification run, which samples nothing"),
  ("images_from_a_language_model", "lm", ["--num=4"], "--num asks for images, but a language_model run samples text"),
  ("prompt_empty", "lm", ["--prompt="], "the prompt is empty"),
  ("prompt_unknown_characters", "lm", ["--prompt=ROMEO€"], "the prompt cannot be encoded: characters not in the vocabulary: '€'"),
  ("num_tokens_zero", "lm", ["--num_tokens=0"], "--num_tokens must be at least 1, got 0"),
  ("temperature_negative", "lm", ["--temperature=-1"], "--temperature must be a finite number >= 0"),
  ("temperature_nan", "lm", ["--temperature=nan"], "--temperature must be a finite number >= 0"),
  ("temperature_text", "lm", ["--temperature=hot"], "flag --temperature=hot: could not convert string to float"),
  ("top_k_negative", "lm", ["--top_k=-1"], "--top_k must be >= 0"),
  ("top_p_above_one", "lm", ["--top_p=2"], "--top_p must be in \\[0, 1\\]"),
  ("seed_text", "lm", ["--seed=abc"], "flag --seed=abc: invalid literal for int"),
  ("num_images_zero", "vae", ["--num=0"], "--num must be at least 1 \\(images to sample\\), got 0"),
  ("num_images_huge", "vae", ["--num=100000000"], "--num must be at most 10000"),
  ("out_not_png", "vae", ["--out={tmp}/grid.jpg"], "--out must name a .png file"),
  ("out_directory_missing", "vae", ["--out={tmp}/nowhere/grid.png"], "its directory does not exist"),
]  # fmt: skip


def save_untrained_checkpoint(workdir, config):
  """A run directory holding a step-10 checkpoint of `config`'s experiment as the loop writes it
  (same identity, meta and state structure; zeros for values: no case reads them)."""
  mesh = parallel.make_data_mesh()
  with jax.set_mesh(mesh):
    experiment = build_experiment(config, mesh)
  shapes = jax.eval_shape(experiment.init_state)
  state = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), shapes)
  checkpointer = Checkpointer(str(workdir / "checkpoints"), experiment.identity)
  checkpointer.save(10, state, experiment.meta, wait=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, corpus_path):
  """Run directories of an mnist_cnn, a shakespeare_gpt and an mnist_vae, to copy into cases;
  read_only/, a read-only tmpfs holding an empty directory `run`, where it can be mounted."""
  root = tmp_path_factory.mktemp("runs")
  save_untrained_checkpoint(root / "cnn", load_config("mnist_cnn", "smoke"))
  save_untrained_checkpoint(
    root / "lm", load_config("shakespeare_gpt", "smoke", dataset=f"text:{corpus_path}")
  )
  save_untrained_checkpoint(root / "vae", load_config("mnist_vae", "smoke"))
  read_only = root / "read_only"
  read_only.mkdir()
  mount = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(read_only)]
  if subprocess.run(mount, capture_output=True, check=False).returncode == 0:
    (read_only / "run").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(read_only)], check=True)
  yield root
  if os.path.ismount(read_only):
    subprocess.run(["umount", str(read_only)], check=True)


def make_workdir(kind: str, path, runs) -> str:
  if kind == "file":
    path.write_text("not a directory")
  elif kind == "under_file":
    path.write_text("not a directory")
    return str(path / "run")
  elif kind == "empty":
    return ""
  elif kind == "proc":
    return f"/proc/dljax-test-{os.getpid()}"
  elif kind == "read_only":
    return str(runs / "read_only" / "run")
  elif kind == "read_only_new":
    return str(runs / "read_only" / "new" / "run")
  elif kind in ("cnn", "lm", "vae"):
    shutil.copytree(runs / kind, path)
  return str(path)


def snapshot(path: str):
  """Every file's and directory's relative path, mode and content digest (None: no such path)."""
  if not path or not os.path.lexists(path):
    return None
  if not os.path.isdir(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()
  entries = {}
  for root, dirs, files in os.walk(path):
    for name in dirs + files:
      full = os.path.join(root, name)
      digest = None if name in dirs else hashlib.sha256(pathlib.Path(full).read_bytes()).hexdigest()
      entries[os.path.relpath(full, path)] = (os.stat(full).st_mode, digest)
  return entries


def run_cases(module: str, cases, tmp_path, runs, corpus_path):
  """Runs every case; returns one line per case that breaks the rules (empty: all kept them)."""
  argvs, workdirs, before = [], [], []
  for case_id, kind, args, _ in cases:
    case_dir = tmp_path / case_id
    case_dir.mkdir()
    workdir = None if kind is None else make_workdir(kind, case_dir / "workdir", runs)
    args = [a.format(tmp=case_dir, corpus=corpus_path) for a in args]
    argvs.append(args if workdir is None else [*args, f"--workdir={workdir}"])
    workdirs.append(workdir)
    before.append(snapshot(workdir))
  results = run_forked(module, argvs)
  broken = []
  for (case_id, _, _, message), workdir, was, (code, stderr) in zip(
    cases, workdirs, before, results
  ):
    lines = stderr.strip().splitlines()
    if code != 2 or len(lines) != 1 or not re.match(f"error: .*{message}", lines[0]):
      broken.append(f"{case_id}: exit {code}, stderr:\n{stderr}")
    elif snapshot(workdir) != was:
      broken.append(f"{case_id}: WORKDIR {workdir} changed")
  return broken


def test_bad_train_inputs(tmp_path, runs, corpus_path):
  assert len({c[0] for c in TRAIN_CASES}) == len(TRAIN_CASES)
  cases = [c for c in TRAIN_CASES if c[1] not in ("read_only", "read_only_new")]
  broken = run_cases("experiments.train", cases, tmp_path, runs, corpus_path)
  assert not broken, "\n".join(broken)


def test_read_only_workdir(tmp_path, runs, corpus_path):
  if not os.path.ismount(runs / "read_only"):
    pytest.skip("no read-only tmpfs here (mounting needs root)")
  cases = [c for c in TRAIN_CASES if c[1] in ("read_only", "read_only_new")]
  broken = run_cases("experiments.train", cases, tmp_path, runs, corpus_path)
  assert len(cases) == 2 and not broken, "\n".join(broken)


def test_bad_generate_inputs(tmp_path, runs, corpus_path):
  assert len({c[0] for c in GENERATE_CASES}) == len(GENERATE_CASES)
  broken = run_cases("experiments.generate", GENERATE_CASES, tmp_path, runs, corpus_path)
  assert not broken, "\n".join(broken)
