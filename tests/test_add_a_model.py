"""The "add a model" walkthrough (docs/add_a_model.md) stays true: its own command trains the
model it adds, and the model's code lives in the files the page names and in no other."""

import json
import os
import re
import shlex
import subprocess

from conftest import REPO, run_module

PAGE = os.path.join(REPO, "docs", "add_a_model.md")
REGISTRY_NAME = "mlp_mixer"


def _page() -> str:
  with open(PAGE, encoding="utf-8") as f:
    return f.read()


def test_the_pages_smoke_command_trains_the_model(tmp_path):
  (command,) = re.findall(r"^python -m .*:smoke .*$", _page(), flags=re.MULTILINE)
  argv = shlex.split(command)
  assert argv[:3] == ["python", "-m", "experiments.train"]
  argv[argv.index("--workdir") + 1] = str(tmp_path)
  out = run_module(*argv[2:], "--config.quiet=True")
  assert out.returncode == 0, out.stderr[-2000:]
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["config"]["model"]["name"] == REGISTRY_NAME
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  losses = [r["loss"] for r in records if r.get("split") == "train"]
  assert losses[-1] < 0.85 * losses[0]  # 2.31 -> 1.78 when written
  assert summary["final"]["test_accuracy"] > 0.3  # 10 classes: chance is 0.1


def test_the_model_lives_only_in_the_files_the_page_names():
  section = _page().split("## The files")[1].split("\n## ")[0]
  named = {
    os.path.normpath(os.path.join("docs", link))
    for link in re.findall(r"\]\(([^)#]+)(?:#L\d+)?\)", section)
  }
  tracked = subprocess.run(
    ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
    cwd=REPO,
    capture_output=True,
    text=True,
    check=True,
  ).stdout.split()
  mentions = set()
  for path in tracked:
    prose = path.startswith(("docs/", "tests/")) or path.endswith(".md")  # README may link it
    if prose or not os.path.isfile(os.path.join(REPO, path)):
      continue
    with open(os.path.join(REPO, path), encoding="utf-8", errors="replace") as f:
      if re.search(r"mixer", f.read(), flags=re.IGNORECASE):
        mentions.add(path)
  assert mentions == named
