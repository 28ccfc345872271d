"""The guidebook (docs/*.md) stays true to the code: its commands name configs that exist and
parse (variant and overridden keys included), and its figures and code links point at files that
exist (a code link named after a function names one in that file)."""

import glob
import os
import re

import pytest
from conftest import REPO

from dljax.cli import load_config

DOCS = os.path.join(REPO, "docs")
PAGES = sorted(glob.glob(os.path.join(DOCS, "*.md")))
# `--config experiments/configs/NAME.py[:VARIANT]`, then the rest of that command line.
COMMAND = re.compile(r"--config[ =](experiments/configs/\w+\.py)(?::(\w+))?(.*)")
OVERRIDE = re.compile(r"--config\.([\w.]+)=")
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")
MAX_FIGURE_BYTES = 100_000


def _read(page: str) -> str:
  with open(page, encoding="utf-8") as f:
    return f.read()


def _flat_keys(config, prefix=""):
  for key, value in config.items():
    yield prefix + key
    if hasattr(value, "items"):
      yield from _flat_keys(value, prefix + key + ".")


def test_the_chapters_have_pages():
  names = {os.path.basename(p) for p in PAGES}
  assert {"basics.md", "vision.md", "sequence.md", "rl.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=os.path.basename)
def test_commands_name_configs_that_exist_and_parse(page):
  text = _read(page)
  keys_on_page = set()
  for path, variant, rest in COMMAND.findall(text):
    assert os.path.exists(os.path.join(REPO, path)), f"{path} in {page} does not exist"
    spec = os.path.join(REPO, path) + (f":{variant}" if variant else "")
    keys = set(_flat_keys(load_config(spec)))  # load_config raises on an unknown variant
    for key in OVERRIDE.findall(rest):
      assert key in keys, f"{page}: {path} has no key {key!r}"
    keys_on_page |= keys
  # Overrides suggested in the prose ("what to try next") belong to one of the page's configs.
  for key in OVERRIDE.findall(text) if keys_on_page else ():
    assert key in keys_on_page, f"{page} mentions --config.{key}, a key of none of its configs"


@pytest.mark.parametrize("page", PAGES, ids=os.path.basename)
def test_links_and_figures_point_at_files_that_exist(page):
  for is_image, text, target in LINK.findall(_read(page)):
    if re.match(r"[a-z]+:", target) or target.startswith("#"):
      continue  # a web address or an anchor on the page
    path = os.path.normpath(os.path.join(DOCS, target.split("#")[0]))
    assert os.path.exists(path), f"{page} links to {target}, which does not exist"
    if is_image:
      assert os.path.getsize(path) < MAX_FIGURE_BYTES, f"{target} is over 100 KB"
    name = re.fullmatch(r"`([\w.]+)`", text)
    if name and path.endswith(".py") and not name.group(1).endswith(".py"):
      identifier = name.group(1).split(".")[-1]
      assert re.search(rf"\b{identifier}\b", _read(path)), f"{page}: {target} has no {identifier}"
