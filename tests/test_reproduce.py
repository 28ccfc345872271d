"""The README's results table and the results quoted on the pages are exactly what
`benchmarks.reproduce` writes from the committed results/results.json, and every number in the
table is a figure of that file; an RL row's seed counts are counted right."""

import json
import os
import re

import pytest
from conftest import REPO

from benchmarks import reproduce
from dljax.errors import DljaxError

RESULTS = os.path.join(REPO, "results", "results.json")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _results() -> dict:
  with open(RESULTS) as f:
    return json.load(f)


def _numbers(value):
  """Every number in a results.json entry (nested lists and dicts), as floats."""
  if isinstance(value, bool) or value is None:
    return
  if isinstance(value, int | float):
    yield float(value)
  elif isinstance(value, dict):
    for v in value.values():
      yield from _numbers(v)
  elif isinstance(value, list):
    for v in value:
      yield from _numbers(v)


def _shown(text: str, value: float) -> bool:
  """Whether `value` (or `value` in percent) rounds to the number written as `text`."""
  decimals = len(text.partition(".")[2])
  return any(
    f"{v:.{decimals}f}" == text.lstrip("-") or f"{v:.{decimals}f}" == text
    for v in (value, 100 * value)
  )


@pytest.mark.parametrize("page", reproduce.pages(os.path.join(REPO, "README.md")))
def test_pages_are_what_reproduce_writes_from_results_json(page):
  with open(page, encoding="utf-8") as f:
    text = f.read()
  assert reproduce.render(text, _results()) == text, (
    f"{os.path.relpath(page, REPO)} differs from results/results.json: run "
    "`python -m benchmarks.reproduce --table_only`"
  )


def test_every_number_in_the_table_is_a_figure_of_results_json():
  results = _results()
  with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
    readme = f.read()
  table = readme.split(reproduce.TABLE_START)[1].split(reproduce.TABLE_END)[0]
  rows = [line for line in table.splitlines() if line.startswith("| `")]
  assert len(rows) == len(reproduce.ROWS)
  for line, name in zip(rows, reproduce.ROWS, strict=True):
    if name not in results["rows"]:
      assert "not run here" in line or "not measured yet" in line
      continue
    known = list(_numbers(results["rows"][name]))
    cells = line.split(" | ")[2:]  # result, wall time, step time: the measured columns
    measured = re.sub(r"`[^`]*`", "", " | ".join(cells))  # commands quoted in a cell
    for text in NUMBER.findall(measured):
      assert any(_shown(text, v) for v in known), f"{name}: {text} is not in results.json"


def test_rl_figures_count_the_seeds_at_the_threshold():
  records = [
    {"seed": s, "final": {"seed_returns": returns}, "wall_s": 1.0, "cpu_s": 1.0}
    | {"step_time_ms": 2.0, "load_before": [0.5, 0.5, 0.5]}
    for s, returns in enumerate([[500.0, 474.9, 475.0], [12.0, 500.0, 480.0]])
  ]
  fig = reproduce.figures("cartpole_ppo", records, None)
  assert (fig["seeds_at_threshold"], fig["num_seed_returns"]) == (4, 6)
  assert (fig["min_return"], fig["median_return"], fig["max_return"]) == (12.0, 477.5, 500.0)
  assert reproduce.result_cell("cartpole_ppo", fig).startswith("4 of 6 seeds >= 475 (min 12.0")


def test_rows_flag_names_rows_that_exist_and_run_here():
  with pytest.raises(DljaxError, match="no row mnist_cnnn"):
    reproduce.rows_to_run(["mnist_cnnn"])
  with pytest.raises(DljaxError, match="cannot run here"):
    reproduce.rows_to_run(["cifar10_resnet"])
  assert "cifar10_resnet" not in reproduce.rows_to_run([])
  assert reproduce.needed_rows("mnist_vae") == ["mnist_cnn"]


def test_pages_quote_sampler_scores_and_a_rerun_row_keeps_them(tmp_path):
  scores = {"ddim_50": {"fid_mnist_cnn": 12.345, "sample_seconds_per_1000": 95.21}}
  results = {"rows": {"mnist_ddpm": {"records": [], "race": None, "samplers": scores}}}
  assert reproduce.page_value(results, "mnist_ddpm.samplers.ddim_50.fid_mnist_cnn") == "12.35"
  with pytest.raises(DljaxError, match=r"ddim_250.*benchmarks.samplers --rows mnist_ddpm"):
    reproduce.page_value(results, "mnist_ddpm.samplers.ddim_250.fid_mnist_cnn")
  path = tmp_path / "results.json"
  path.write_text(json.dumps(results))
  record = {"seed": 0, "final": {"fid_mnist_cnn": 80.0}, "wall_s": 1.0, "cpu_s": 1.0}
  record |= {"step_time_ms": 2.0, "load_before": [0.5, 0.5, 0.5], "settings": {}}
  reproduce.store(str(path), "mnist_ddpm", [record], None)
  assert json.loads(path.read_text())["rows"]["mnist_ddpm"]["samplers"] == scores


def test_the_table_says_which_machine_measured_which_row():
  def entry(cpu: str, date: str) -> dict:
    machine = {"cpu": cpu, "cores": 2, "jax": "0.10.2"}
    return {"records": [{"machine": machine, "date": date}], "race": None}

  one = {"rows": {"mnist_mlp": entry("Xeon", "2026-12-04T10:00")}}
  assert reproduce.measured_on(one).startswith("Measured 2026-12-04 on Xeon, 2 cores, jax 0.10.2,")
  two = {"rows": one["rows"] | {"shakespeare_gpt_cpu": entry("EPYC", "2026-12-07T17:00")}}
  assert reproduce.measured_on(two).startswith(
    "Measured 2026-12-04, 2026-12-07 on EPYC, 2 cores, jax 0.10.2 (`shakespeare_gpt:cpu`); "
    "Xeon, 2 cores, jax 0.10.2 (`mnist_mlp`),"
  )
  assert reproduce.measured_on({"rows": {}}) == ""
