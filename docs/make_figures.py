"""Regenerates the guidebook's figures (docs/figures/*.png) by running the chapters' commands.

  python docs/make_figures.py [--runs runs/docs] [--chapters basics,vision,sequence,rl] [--rerun]

Every run is a page's command, `python -m experiments.train --config ... --workdir RUNS/NAME`;
one whose summary.json exists is reused unless --rerun. The figures are PNGs the runs wrote,
copied, and a few drawn here from the runs' checkpoints or outputs (GPT attention maps, CartPole
filmstrips, the DCGAN's training GIF), stored as palette PNGs or GIFs (< 100 KB each). Prints
every run's final metrics and wall time: the numbers the pages quote. On a quiet 2-core CPU about
5 minutes for basics, vision, sequence and rl, 6 for vaes, 6 for gans.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

from dljax.metrics_log import import_pyplot

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURES = os.path.join(REPO, "docs", "figures")
CORPUS = "text:../shared/data/tinyshakespeare.txt"
MAX_FIGURE_BYTES = 100_000

# run name -> (chapters that need it, config spec under experiments/configs/, extra command-line
# flags; "{runs}" in a flag stands for the --runs directory)
RUNS = {
  "basics_linear": (("basics",), "basics_linear.py", ()),
  "basics_linear_jax_grad": (("basics",), "basics_linear.py:jax_grad", ()),
  "basics_logistic": (("basics",), "basics_logistic.py", ()),
  "basics_logistic_jax_grad": (("basics",), "basics_logistic.py:jax_grad", ()),
  "basics_moons": (("basics",), "basics_moons.py", ()),
  "basics_gradcheck": (("basics",), "basics_gradcheck.py", ()),
  "basics_compare": (("basics",), "basics_compare.py", ()),
  # mnist_cnn is also the classifier of the DCGAN's fid_mnist_cnn. An evaluation every 2 epochs
  # (124 steps) draws its test curves; evaluating changes no training step.
  "mnist_cnn": (("vision", "gans"), "mnist_cnn.py", ("--config.eval_every_steps=124",)),
  # A validation loss every 200 steps draws its curve (the raced config evaluates once, at the
  # end: what is not training counts in a race).
  "shakespeare_gpt_cpu": (
    ("sequence",),
    "shakespeare_gpt.py:cpu",
    (f"--config.dataset={CORPUS}", "--config.eval_every_steps=200"),
  ),
  "cartpole_ppo": (("rl",), "cartpole_ppo.py", ()),
  "cartpole_dqn": (("rl",), "cartpole_dqn.py", ()),
  "pendulum_ppo": (("rl",), "pendulum_ppo.py", ()),
  # FID needs a classifier run (see docs/vaes.md); the other figures do not. The MLP VAE's test
  # ELBO every 5 epochs (310 steps) draws its curves; its figures need no k = 1000 bound (k = 100
  # costs a tenth of that final evaluation).
  "mnist_vae": (
    ("vaes",),
    "mnist_vae.py",
    (
      "--config.fid_classifier_workdir=",
      "--config.eval_every_steps=310",
      "--config.iw_samples=100",
    ),
  ),
  "mnist_vae_conv": (("vaes",), "mnist_vae.py:conv", ("--config.fid_classifier_workdir=",)),
  "mnist_vae_latent2": (("vaes",), "mnist_vae.py:latent2", ("--config.fid_classifier_workdir=",)),
  "mnist_dcgan": (
    ("gans",),
    "mnist_dcgan.py",
    ("--config.fid_classifier_workdir={runs}/mnist_cnn",),
  ),
  "mnist_ddpm": (
    ("outlook",),
    "mnist_ddpm.py",
    ("--config.fid_classifier_workdir={runs}/mnist_cnn",),
  ),
  "mnist_flow": (
    ("outlook",),
    "mnist_flow.py",
    ("--config.fid_classifier_workdir={runs}/mnist_cnn",),
  ),
}
GIF_SAMPLES = 16  # noise vectors of the DCGAN's training GIF (of the run's 64 per grid)


def train(name: str, runs: str, rerun: bool) -> dict:
  """Runs (or reuses) the command of run `name`; returns its summary.json."""
  _, spec, flags = RUNS[name]
  workdir = os.path.join(runs, name)
  summary_path = os.path.join(workdir, "summary.json")
  if rerun and os.path.isdir(workdir):
    shutil.rmtree(workdir)
  if not os.path.exists(summary_path):
    command = [
      sys.executable,
      "-m",
      "experiments.train",
      "--config",
      f"experiments/configs/{spec}",
      "--workdir",
      workdir,
      "--config.quiet=True",
      *(flag.format(runs=runs) for flag in flags),
    ]
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, cwd=REPO, check=True)
  with open(summary_path) as f:
    return json.load(f)


def save_figure(source: str, name: str):
  """Stores `source` as docs/figures/NAME.png, quantised to a 256-colour palette, or, a GIF (its
  frames are palette images already), as NAME.gif unchanged."""
  from PIL import Image

  if source.endswith(".gif"):
    path = os.path.join(FIGURES, name + ".gif")
    shutil.copyfile(source, path)
  else:
    path = os.path.join(FIGURES, name + ".png")
    Image.open(source).convert("RGB").quantize(colors=256).save(path, optimize=True)
  size = os.path.getsize(path)
  if size > MAX_FIGURE_BYTES:
    raise SystemExit(f"{path} is {size} bytes, over {MAX_FIGURE_BYTES}: draw it smaller")
  print(f"  docs/figures/{os.path.basename(path)} ({size // 1000} KB)")


def filmstrip(paths: list[str], out: str, titles=None):
  """The images `paths` side by side in one row."""
  plt = import_pyplot()
  fig, axes = plt.subplots(1, len(paths), figsize=(2.4 * len(paths), 2.1))
  for i, (ax, path) in enumerate(zip(axes, paths)):
    ax.imshow(plt.imread(path))
    ax.axis("off")
    if titles:
      ax.set_title(titles[i], fontsize=8)
  fig.tight_layout(pad=0.2)
  fig.savefig(out, dpi=90)
  plt.close(fig)


def _records(workdir: str, split: str, metric: str) -> np.ndarray:
  """[(step, value)] of `metric` in a run's metrics.jsonl."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  return np.array([(r["step"], r[metric]) for r in records if r["split"] == split and metric in r])


def regression_figure(runs: str, out: str):
  """Linear (top) and logistic (bottom) regression, optax vs the hand-written update: training
  loss, and the fitted weights' distance to the generating ones."""
  plt = import_pyplot()
  fig, axes = plt.subplots(2, 2, figsize=(8, 5.2))
  for row, problem in zip(axes, ("linear", "logistic")):
    for suffix, label in (("", "optax"), ("_jax_grad", "jax.grad, by hand")):
      workdir = os.path.join(runs, f"basics_{problem}{suffix}")
      loss, error = _records(workdir, "train", "loss"), _records(workdir, "eval", "weight_error")
      row[0].plot(loss[:, 0], loss[:, 1], label=label)
      row[1].plot(error[:, 0], error[:, 1], marker="o", markersize=3, label=label)
    reference = "least_squares" if problem == "linear" else "max_likelihood"
    value = _records(os.path.join(runs, f"basics_{problem}"), "eval", f"{reference}_weight_error")[
      -1, 1
    ]
    row[1].axhline(value, color="gray", linestyle="--", label=reference.replace("_", " "))
    row[0].set(
      title=f"{problem} regression: training loss",
      xlabel="step",
      yscale="log" if problem == "linear" else "linear",
    )
    row[1].set(title="|w - w_true| / |w_true|", yscale="log", xlabel="step")
    row[1].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(out, dpi=80)
  plt.close(fig)


def basics_figures(runs: str, scratch: str):
  regression_figure(runs, os.path.join(scratch, "regression.png"))
  save_figure(os.path.join(scratch, "regression.png"), "basics_regression")
  frames_dir = os.path.join(runs, "basics_moons", "boundary")
  frames = sorted(os.listdir(frames_dir))
  picks = [frames[i] for i in np.linspace(0, len(frames) - 1, 4).round().astype(int)]
  filmstrip([os.path.join(frames_dir, f) for f in picks], os.path.join(scratch, "moons.png"))
  save_figure(os.path.join(scratch, "moons.png"), "basics_moons_boundary")
  save_figure(os.path.join(runs, "basics_compare", "comparison.png"), "basics_compare")


def train_test_figure(workdir: str, out: str, panels, title: str, test_label: str = "test"):
  """One panel per (train metric, test metric, title, axis settings): the training metric at
  every log (the mean over the steps since the last one) and the test metric at every
  evaluation, on one axis."""
  plt = import_pyplot()
  fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2))
  for ax, (train_metric, test_metric, label, settings) in zip(np.atleast_1d(axes), panels):
    train, test = _records(workdir, "train", train_metric), _records(workdir, "eval", test_metric)
    ax.plot(train[:, 0], train[:, 1], label="train (batches, as trained)", linewidth=1)
    ax.plot(test[:, 0], test[:, 1], marker="o", markersize=3, label=test_label)
    ax.set(title=label, xlabel="step", **settings)
    ax.legend(fontsize=8)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(out, dpi=80)
  plt.close(fig)


def classifier_predictions(workdir: str, dataset: str):
  """(test images, labels, predicted labels) of the newest checkpoint of a classifier run."""
  import jax

  from dljax.data import load_image_dataset
  from dljax.models import build_model

  state, meta = _restore(workdir)
  data = load_image_dataset(dataset, None, False)
  model = build_model(meta["identity"]["model"], num_classes=data.num_classes)
  variables = {"params": state["params"], **(state.get("mutable") or {})}
  logits = jax.jit(lambda x: model.apply(variables, x, train=False))(data.test_images)
  return data.test_images, data.test_labels, np.asarray(np.argmax(logits, -1))


def confusion_figure(labels, predicted, out: str):
  """The confusion matrix: how many test digits of each class got each prediction."""
  plt = import_pyplot()
  classes = int(labels.max()) + 1
  counts = np.zeros((classes, classes), int)
  np.add.at(counts, (labels, predicted), 1)
  fig, ax = plt.subplots(figsize=(4.4, 4))
  ax.imshow(np.log1p(counts), cmap="Blues")
  for i in range(classes):
    for j in range(classes):
      if counts[i, j]:
        color = "white" if i == j else "black"
        ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=7, color=color)
  ax.set(xticks=range(classes), yticks=range(classes), xlabel="predicted", ylabel="true label")
  accuracy = np.mean(labels == predicted)
  ax.set_title(f"{len(labels)} test digits, {accuracy:.1%} correct", fontsize=9)
  fig.tight_layout()
  fig.savefig(out, dpi=90)
  plt.close(fig)


def misclassified_figure(images, labels, predicted, out: str, num: int = 16):
  """The first `num` misclassified test digits, each titled true -> predicted."""
  plt = import_pyplot()
  wrong = np.flatnonzero(labels != predicted)[:num]
  columns = 8
  rows = max(1, -(-len(wrong) // columns))
  fig, axes = plt.subplots(rows, columns, figsize=(1.1 * columns, 1.25 * rows), squeeze=False)
  for ax in axes.flat:
    ax.axis("off")
  for ax, i in zip(axes.flat, wrong):
    ax.imshow(images[i, :, :, 0], cmap="gray_r")
    ax.set_title(f"{labels[i]} -> {predicted[i]}", fontsize=8)
  fig.tight_layout(pad=0.3)
  fig.savefig(out, dpi=80)
  plt.close(fig)


def vision_figures(runs: str, scratch: str):
  workdir = os.path.join(runs, "mnist_cnn")
  curves = os.path.join(scratch, "mnist_cnn_curves.png")
  panels = (
    ("loss", "test_loss", "cross-entropy", {"yscale": "log"}),
    ("accuracy", "test_accuracy", "accuracy", {"ylim": (0.9, 1.0)}),
  )
  train_test_figure(workdir, curves, panels, "mnist_cnn: train vs test")
  save_figure(curves, "vision_mnist_cnn_curves")
  images, labels, predicted = classifier_predictions(workdir, "mnist5k")
  confusion_figure(labels, predicted, os.path.join(scratch, "confusion.png"))
  save_figure(os.path.join(scratch, "confusion.png"), "vision_mnist_cnn_confusion")
  misclassified_figure(images, labels, predicted, os.path.join(scratch, "misclassified.png"))
  save_figure(os.path.join(scratch, "misclassified.png"), "vision_mnist_cnn_misclassified")


def _restore(workdir: str):
  """(raw state tree, meta) of the newest checkpoint in `workdir`."""
  from dljax.checkpoint import Checkpointer

  checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), {})
  step = checkpointer.latest_step()
  return checkpointer.restore_raw(step), checkpointer.read_meta(step)


def attention_map(workdir: str, out: str, text: str):
  """Every layer's and head's attention probabilities over `text` (rows: queries)."""
  from dljax.data.text import CharVocab
  from dljax.models import build_model
  from dljax.models.gpt import attention_weights

  state, meta = _restore(workdir)
  model = build_model(meta["model"])
  tokens = CharVocab.from_json(meta["vocab"]).encode(text)[None]
  weights = np.asarray(attention_weights(model, {"params": state["params"]}, tokens))[:, 0]
  plt = import_pyplot()
  layers, heads = weights.shape[:2]
  fig, axes = plt.subplots(layers, heads, figsize=(1.9 * heads, 1.9 * layers))
  labels = [c if c != "\n" else "\\n" for c in text]
  for layer in range(layers):
    for head in range(heads):
      ax = axes[layer, head]
      ax.imshow(weights[layer, head], cmap="magma", vmin=0, vmax=1)
      ax.set_xticks([])
      ax.set_yticks([])
      if layer == layers - 1:
        ax.set_xticks(range(len(text)), labels, fontsize=4, fontfamily="monospace")
      if head == 0:
        ax.set_yticks(range(len(text)), labels, fontsize=4, fontfamily="monospace")
        ax.set_ylabel(f"layer {layer}", fontsize=8)
      if layer == 0:
        ax.set_title(f"head {head}", fontsize=8)
  fig.suptitle(f"attention over {text!r} (row: query, column: key)", fontsize=8)
  fig.tight_layout(pad=0.3, rect=(0, 0, 1, 0.97))
  fig.savefig(out, dpi=100)
  plt.close(fig)


def sequence_figures(runs: str, scratch: str):
  workdir = os.path.join(runs, "shakespeare_gpt_cpu")
  curves = os.path.join(scratch, "gpt_curves.png")
  panels = (("loss", "val_loss", "cross-entropy (nats per character)", {}),)
  train_test_figure(workdir, curves, panels, "shakespeare_gpt:cpu", test_label="validation")
  save_figure(curves, "sequence_gpt_curves")
  attention_map(workdir, os.path.join(scratch, "attention.png"), "ROMEO:\nO, she doth teach the ")
  save_figure(os.path.join(scratch, "attention.png"), "sequence_gpt_attention")


def cartpole_episode(policy, seed: int, num_steps: int) -> list:
  """CartPole states of one episode under `policy` (obs -> action), until it ends."""
  import jax

  from dljax.rl import envs

  env, params = envs.make("CartPole-v1")
  step = jax.jit(env.step)
  key = jax.random.PRNGKey(seed)
  _, state = env.reset(key, params)
  obs = env.observation(state, params)
  states = [state]
  for t in range(num_steps):
    obs, state, _, terminated, truncated = step(
      jax.random.fold_in(key, t), state, policy(obs), params
    )
    states.append(state)
    if terminated or truncated:
      break
  return states


def draw_cartpole(ax, state, t: int, end: bool):
  """The cart (a box on the track), its 1 m pole and, dashed, the angles that end an episode."""
  from dljax.rl.envs.cartpole import CartPoleParams

  x, theta = float(state.x), float(state.theta)
  limit = CartPoleParams().theta_threshold_radians
  ax.plot([-2.4, 2.4], [0, 0], color="gray", linewidth=1)
  for angle in (-limit, limit):
    ax.plot(
      [x, x + np.sin(angle)],
      [0.1, 0.1 + np.cos(angle)],
      color="gray",
      linewidth=0.5,
      linestyle="--",
    )
  ax.add_patch(import_pyplot().Rectangle((x - 0.25, -0.1), 0.5, 0.2, color="steelblue"))
  ax.plot([x, x + np.sin(theta)], [0.1, 0.1 + np.cos(theta)], color="peru", linewidth=3)
  ax.set(xlim=(-2.5, 2.5), ylim=(-0.3, 1.3), aspect="equal", xticks=[], yticks=[])
  ax.set_title(f"t = {t}{' (end)' if end else ''}, {np.degrees(theta):+.1f}°", fontsize=7)


def cartpole_filmstrip(workdir: str, out: str, frames: int = 6):
  """A random policy's episode above the trained PPO policy's (seed 0), `frames` states each."""
  import jax
  import jax.numpy as jnp

  from dljax.models import build_model

  state, _ = _restore(workdir)
  with open(os.path.join(workdir, "summary.json")) as f:
    model_config = json.load(f)["config"]["model"]
  model = build_model({"name": "rl_actor_critic", **model_config}, action_dim=2)
  params = jax.tree.map(lambda x: x[0], state["agent"]["params"])  # seed 0 of the vmapped seeds
  logits = jax.jit(lambda obs: model.apply({"params": params}, obs)[0])
  trained = lambda obs: jnp.argmax(logits(obs))
  rng = np.random.default_rng(0)
  episodes = {
    "random policy": cartpole_episode(lambda obs: rng.integers(2), 0, 500),
    "trained PPO policy": cartpole_episode(trained, 0, 500),
  }
  plt = import_pyplot()
  fig, axes = plt.subplots(2, frames, figsize=(1.6 * frames, 2.3))
  for row, (label, states) in zip(axes, episodes.items()):
    for ax, t in zip(row, np.linspace(0, len(states) - 1, frames).round().astype(int)):
      draw_cartpole(ax, states[t], t, end=t == len(states) - 1)
    row[0].set_ylabel(label, fontsize=7)
  fig.tight_layout(pad=0.3)
  fig.savefig(out, dpi=90)
  plt.close(fig)


def rl_figures(runs: str, scratch: str):
  workdir = os.path.join(runs, "cartpole_ppo")
  save_figure(os.path.join(workdir, "returns.png"), "rl_cartpole_ppo_returns")
  save_figure(os.path.join(runs, "cartpole_dqn", "returns.png"), "rl_cartpole_dqn_returns")
  save_figure(os.path.join(runs, "pendulum_ppo", "returns.png"), "rl_pendulum_ppo_returns")
  cartpole_filmstrip(workdir, os.path.join(scratch, "filmstrip.png"))
  save_figure(os.path.join(scratch, "filmstrip.png"), "rl_cartpole_filmstrip")


def vaes_figures(runs: str, scratch: str):
  curves = os.path.join(scratch, "vae_curves.png")
  panels = (
    ("loss", "neg_elbo", "negative ELBO (nats per image)", {"ylim": (95, 140)}),
    ("recon", "recon", "recon", {"ylim": (70, 115)}),
    ("kl", "kl", "KL", {}),
  )
  train_test_figure(os.path.join(runs, "mnist_vae"), curves, panels, "mnist_vae: train vs test")
  save_figure(curves, "vae_elbo_curves")
  for name, figures in (
    (
      "mnist_vae",
      (
        ("samples", "vae_samples"),
        ("reconstructions", "vae_reconstructions"),
        ("interpolation", "vae_interpolation"),
      ),
    ),
    ("mnist_vae_conv", (("samples", "vae_conv_samples"),)),
    (
      "mnist_vae_latent2",
      (("manifold", "vae_latent2_manifold"), ("latent_scatter", "vae_latent2_latent_scatter")),
    ),
  ):
    workdir = os.path.join(runs, name)
    with open(os.path.join(workdir, "summary.json")) as f:
      step = json.load(f)["steps"]
    for kind, figure in figures:
      save_figure(os.path.join(workdir, "figures", f"{kind}_step{step:06d}.png"), figure)


def fid_figure(workdir: str, out: str):
  """fid_mnist_cnn over the steps, in both BatchNorm sampling modes, above the real-vs-real floor."""
  with open(os.path.join(workdir, "summary.json")) as f:
    summary = json.load(f)
  modes = ["running averages", "batch statistics"]
  if summary["config"]["sample_batch_stats"]:
    modes.reverse()
  plt = import_pyplot()
  fig, ax = plt.subplots(figsize=(5.2, 3.2))
  for metric, label in (
    ("fid_mnist_cnn", f"BatchNorm {modes[0]} (configured)"),
    (f"fid_mnist_cnn_{modes[1].replace(' ', '_')}", f"BatchNorm {modes[1]}"),
  ):
    points = _records(workdir, "eval", metric)
    ax.plot(points[:, 0], points[:, 1], marker="o", label=label)
  floor = summary["final"].get("fid_mnist_cnn_real_vs_real")
  if floor is not None:
    ax.axhline(floor, color="gray", linestyle="--", label="real vs real")
  ax.set_yscale("log")
  ax.set_xlabel("step")
  ax.set_ylabel("fid_mnist_cnn")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(out, dpi=90)
  plt.close(fig)


def class_histogram(workdir: str, classifier: str, out: str, num: int = 10_000):
  """The classifier's predicted classes of `num` samples of the run's newest checkpoint (drawn
  as experiments.generate draws them, seed 0), against those of the real test digits."""
  from dljax.data import load_image_dataset
  from dljax.tasks import SampleOptions, task_module
  from dljax.tasks.fid import load_feature_extractor

  state, meta = _restore(workdir)
  images = task_module(meta["identity"]["task"]).sample(state, meta, SampleOptions(num=num))
  extractor = load_feature_extractor(classifier)
  with open(os.path.join(workdir, "summary.json")) as f:
    dataset = json.load(f)["config"]["dataset"]
  real = load_image_dataset(dataset).test_images

  def shares(x):
    classes = extractor.predicted_classes(extractor(x))
    return np.bincount(classes, minlength=extractor.num_classes) / len(classes)

  generated = shares(images)
  plt = import_pyplot()
  fig, ax = plt.subplots(figsize=(5.2, 2.8))
  classes = np.arange(extractor.num_classes)
  ax.bar(classes - 0.2, 100 * shares(real), 0.4, label=f"{dataset} test images", color="gray")
  ax.bar(classes + 0.2, 100 * generated, 0.4, label=f"{num:,} samples")
  ax.axhline(5, color="red", linewidth=0.8, linestyle=":", label="5 %")
  ax.set_xticks(classes)
  ax.set_xlabel("class predicted by the FID classifier")
  ax.set_ylabel("% of images")
  ax.set_title(
    f"smallest class {100 * generated.min():.1f} %, largest {100 * generated.max():.1f} %"
  )
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(out, dpi=90)
  plt.close(fig)
  print(f"  class shares of {num:,} samples (%): {np.round(100 * generated, 1).tolist()}")


def gans_figures(runs: str, scratch: str):
  """The last evaluation's sample grid, a GIF of the first GIF_SAMPLES of every evaluation's
  fixed-noise samples (a page-sized version of the run's samples.gif, which shows all 64), the
  FID over the steps, and the class histogram of 10,000 samples."""
  from dljax.tasks.image_grid import save_gif

  workdir = os.path.join(runs, "mnist_dcgan")
  fid_figure(workdir, os.path.join(scratch, "fid.png"))
  save_figure(os.path.join(scratch, "fid.png"), "gans_mnist_dcgan_fid")
  class_histogram(workdir, os.path.join(runs, "mnist_cnn"), os.path.join(scratch, "classes.png"))
  save_figure(os.path.join(scratch, "classes.png"), "gans_mnist_dcgan_classes")
  samples = os.path.join(workdir, "samples")
  steps = sorted(f[: -len(".npy")] for f in os.listdir(samples) if f.endswith(".npy"))
  save_figure(os.path.join(samples, steps[-1] + ".png"), "gans_mnist_dcgan_samples")
  frames = [np.load(os.path.join(samples, s + ".npy"))[:GIF_SAMPLES] / 255.0 for s in steps]
  save_gif(frames, os.path.join(scratch, "training.gif"))
  save_figure(os.path.join(scratch, "training.gif"), "gans_mnist_dcgan_training")


TRAJECTORY_FRAMES = 6  # columns of the denoising / ODE trajectory figures


def outlook_figures(runs: str, scratch: str):
  """Each denoising run's final sample grid, and its trajectory: rows are samples, columns the
  sampler's states from the first step (noise-like) to the last (the sample)."""
  from dljax.tasks.image_grid import save_grid

  for name, samples_figure, trajectory_figure in (
    ("mnist_ddpm", "outlook_mnist_ddpm_samples", "outlook_mnist_ddpm_trajectory"),
    ("mnist_flow", "outlook_mnist_flow_samples", "outlook_mnist_flow_trajectory"),
  ):
    samples = os.path.join(runs, name, "samples")
    last = max(f for f in os.listdir(samples) if f.endswith(".png"))
    save_figure(os.path.join(samples, last), samples_figure)
    path = np.load(os.path.join(runs, name, "trajectory.npy")) / 255.0  # [steps, N, H, W, C]
    frames = np.round(np.linspace(0, len(path) - 1, TRAJECTORY_FRAMES)).astype(int)
    rows = np.swapaxes(path[frames], 0, 1).reshape(-1, *path.shape[2:])  # sample by sample
    save_grid(rows, os.path.join(scratch, f"{name}_trajectory.png"), ncol=TRAJECTORY_FRAMES)
    save_figure(os.path.join(scratch, f"{name}_trajectory.png"), trajectory_figure)


FIGURES_OF = {
  "basics": basics_figures,
  "vision": vision_figures,
  "sequence": sequence_figures,
  "rl": rl_figures,
  "vaes": vaes_figures,
  "gans": gans_figures,
  "outlook": outlook_figures,
}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument(
    "--runs",
    default=os.path.join(REPO, "runs", "docs"),
    help="where the runs' workdirs go (reused if they hold a summary.json)",
  )
  parser.add_argument(
    "--chapters",
    default=",".join(FIGURES_OF),
    help="comma-separated subset of " + ",".join(FIGURES_OF),
  )
  parser.add_argument("--rerun", action="store_true", help="train again even if a run exists")
  args = parser.parse_args()
  chapters = args.chapters.split(",")
  unknown = sorted(set(chapters) - FIGURES_OF.keys())
  if unknown:
    parser.error(f"unknown chapters {unknown}; known: {', '.join(FIGURES_OF)}")
  runs = os.path.abspath(args.runs)
  scratch = os.path.join(runs, "figures_scratch")
  os.makedirs(scratch, exist_ok=True)
  os.makedirs(FIGURES, exist_ok=True)
  for chapter in chapters:
    print(f"== {chapter}")
    for name in [n for n, (needed_by, _, _) in RUNS.items() if chapter in needed_by]:
      summary = train(name, runs, args.rerun)
      final = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, int | float) else f"{k}={v}"  # RL: per-seed returns
        for k, v in summary["final"].items()
      )
      print(
        f"  {name}: {final}; wall {summary['wall_time_s']:.1f} s, "
        f"{summary['step_time_ms']:.2f} ms/step on {summary['devices']}",
        flush=True,
      )
    FIGURES_OF[chapter](runs, scratch)


if __name__ == "__main__":
  main()
