"""The samplers of the diffusion and flow-matching rows compared on one trained run each: FID,
class shares and sampling time per sampler and number of steps.

  python -m benchmarks.samplers [--rows mnist_ddpm,mnist_flow] [--samplers ddpm:50,...] [--num 1000]

For each row (benchmarks.reproduce's `ROWS` with `samplers`), it takes the run that
`python -m benchmarks.reproduce --rows ROW` left (its first seed's workdir under `--runs`, and
mnist_cnn's for the classifier), draws `--num` images with every sampler of the row through the
task's sampling hook (the one `experiments.generate` calls: the EMA network), and scores them with
fid_mnist_cnn against the run's test images, as the training run's final evaluation does with its
own sampler. Beside them it scores `--num` real training images: the real-vs-real floor of that
sample size (fewer samples read higher). The time per 1,000 images leaves compilation out: it is
the difference between drawing `--num` images and drawing one batch, each call compiling once.

The figures go into results/results.json (the row's `samplers`), from which benchmarks.reproduce
fills the pages (`<!-- result ROW.samplers.SAMPLER_STEPS.FIGURE -->`); a rerun of the row keeps
them until this runs again (the training is deterministic: a rerun of the same config trains the
same network). `--samplers` scores only some of a row's samplers and keeps the others' scores when
they are of the same checkpoint.
"""

import json
import os
import time

from absl import flags

from benchmarks.reproduce import ROWS, load_results, workdir, write_pages
from dljax import cli
from dljax.errors import DljaxError

# --rows, --out, --runs and --readme are benchmarks.reproduce's flags (defined on its import).
_NUM = flags.DEFINE_integer(
  "num",
  1000,
  "Images per sampler: a multiple of the run's sample_batch_size, at least two batches.",
)
_SAMPLERS = flags.DEFINE_list(
  "samplers", [], "Score only these SAMPLER:STEPS of the rows' (default: all), keeping the others."
)
FLAGS = flags.FLAGS


def finished_run(name: str, runs: str) -> str:
  """Row `name`'s first-seed workdir, refused unless the run finished."""
  path = workdir(runs, name, ROWS[name].seeds[0])
  if not os.path.exists(os.path.join(path, "summary.json")):
    raise DljaxError(
      f"{path} holds no finished run; make it first: python -m benchmarks.reproduce --rows {name}"
    )
  return path


def score_samplers(run: str, classifier: str, samplers: tuple[str, ...], num: int) -> dict:
  """{"SAMPLER_STEPS": figures} for each "SAMPLER:STEPS" of `samplers`, and "real" (the floor)."""
  import numpy as np

  from dljax.checkpoint import Checkpointer, install
  from dljax.data import load_image_dataset
  from dljax.tasks import SampleOptions, task_module
  from dljax.tasks.fid import make_sample_scorer

  install()
  with open(os.path.join(run, "summary.json")) as f:
    config = json.load(f)["config"]
  batch = config["sample_batch_size"]  # images per sampling call
  if num < 2 * batch or num % batch:
    raise DljaxError(
      f"--num must be a multiple of {run}'s sample_batch_size {batch} of at least {2 * batch} (the "
      f"time is the difference from one batch), got {num}"
    )
  data = load_image_dataset(config["dataset"], config["data_dir"] or None, False)
  score, _ = make_sample_scorer(classifier, data)
  checkpointer = Checkpointer(os.path.join(run, "checkpoints"), {})
  step = checkpointer.latest_step()
  meta, tree = checkpointer.read_meta(step), checkpointer.restore_raw(step)
  module = task_module(meta["identity"]["task"])
  out = {"real": {**score(data.train_images[:num]), "step": step, "num": num}}
  for spec in samplers:
    sampler, steps = spec.split(":")

    def draw(n, sampler=sampler, steps=steps):
      start = time.perf_counter()
      options = SampleOptions(seed=0, num=n, steps=int(steps), sampler=sampler)
      images = module.sample(tree, meta, options)
      return images, time.perf_counter() - start

    _, one_batch = draw(batch)
    images, seconds = draw(num)
    figures = score(np.asarray(images))
    figures["sample_seconds_per_1000"] = (seconds - one_batch) / (num - batch) * 1000
    out[f"{sampler}_{steps}"] = figures
    print(f"{os.path.basename(run)} {spec}: {json.dumps(figures)}", flush=True)
  return out


def main(argv):
  del argv
  names = FLAGS.rows or [n for n, row in ROWS.items() if row.samplers]
  unknown = [n for n in names if n not in ROWS or not ROWS[n].samplers]
  if unknown:
    have = ", ".join(n for n, row in ROWS.items() if row.samplers)
    raise DljaxError(
      f"--rows: {', '.join(unknown)} has no samplers to compare; those that do: {have}"
    )
  path = os.path.join(FLAGS.out, "results.json")
  classifier = finished_run("mnist_cnn", FLAGS.runs)
  for name in names:
    specs = [s for s in ROWS[name].samplers if not _SAMPLERS.value or s in _SAMPLERS.value]
    if not specs:
      raise DljaxError(
        f"--samplers: row {name} has none of {', '.join(_SAMPLERS.value)}; its samplers are "
        f"{', '.join(ROWS[name].samplers)}"
      )
    scores = score_samplers(finished_run(name, FLAGS.runs), classifier, specs, _NUM.value)
    results = load_results(path)
    if name not in results["rows"]:
      raise DljaxError(f"results.json has no row {name}; run python -m benchmarks.reproduce first")
    earlier = results["rows"][name].get("samplers", {})
    if _SAMPLERS.value and earlier.get("real") == scores["real"]:  # the same checkpoint, as many
      scores = {**earlier, **scores}
    results["rows"][name]["samplers"] = scores
    with open(path, "w") as f:
      json.dump(results, f, indent=1)
  write_pages(load_results(path), FLAGS.readme)


if __name__ == "__main__":
  cli.run_main(main)
