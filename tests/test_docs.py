"""The guidebook (README.md and docs/*.md) stays true to the code: its commands name configs that
exist and parse (variant and overridden keys included) and modules, flags, races and workloads
that exist; its figures and code links point at files that exist (a code link named after a
function names one in that file, and its line anchor the line that defines it); its code excerpts
are the source they name; the primer's snippets run; the chapters cite their papers; and every
figure is one docs/make_figures.py writes."""

import ast
import glob
import importlib.util
import os
import re
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

from benchmarks.race import RACES
from benchmarks.workloads import NAMES as WORKLOADS
from dljax.cli import load_config

DOCS = os.path.join(REPO, "docs")
FIGURES = os.path.join(DOCS, "figures")
PAGES = sorted(glob.glob(os.path.join(DOCS, "*.md"))) + [os.path.join(REPO, "README.md")]
# `--config experiments/configs/NAME.py[:VARIANT]`, then the rest of that command line
# (lower-case names only: README's `NAME.py` is a placeholder).
COMMAND = re.compile(r"--config[ =](experiments/configs/[a-z0-9_]+\.py)(?::(\w+))?(.*)")
OVERRIDE = re.compile(r"--config\.([a-z_][\w.]*)=")  # upper case: a placeholder (KEY)
# `python -m PACKAGE.MODULE ...` up to the end of the line or of the inline code span.
MODULE_COMMAND = re.compile(r"python3? -m ((?:experiments|benchmarks)\.\w+)([^`\n]*)")
FLAG = re.compile(r"(?<![\w-])--([\w.-]+)(?:[ =]([^\s\]`\"]+))?")
CHAPTERS_COMMAND = re.compile(r"make_figures\.py --chapters ([\w,]+)")
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")
# A code link named after a symbol: [`NAME`](PATH.py#LN), NAME possibly `Class.method`.
SYMBOL_LINK = re.compile(r"\[`([\w.]+)`\]\(([^)\s#]+\.py)(?:#L(\d+))?\)")
# A code excerpt: this marker, then a python block that is the source of the function NAME
# (`outer.inner` for a nested one) in the file PATH (relative to the repository root).
EXCERPT = re.compile(
  r"<!-- excerpt: (\S+\.py) ([\w.]+) -->\n```python\n(.*?)^```$", re.MULTILINE | re.DOTALL
)
# Pages whose code links are not anchored yet: add_a_model.md is being rewritten by another
# change in this round; its links get their anchors when the two meet (this test names the lines).
UNANCHORED_PAGES = set()
MAX_FIGURE_BYTES = 100_000


def _read(path: str) -> str:
  with open(path, encoding="utf-8") as f:
    return f.read()


def _command_lines(page: str) -> str:
  """The page's text with shell line continuations (`\\` + newline) joined."""
  return _read(page).replace("\\\n", " ")


def _flat_keys(config, prefix=""):
  for key, value in config.items():
    yield prefix + key
    if hasattr(value, "items"):
      yield from _flat_keys(value, prefix + key + ".")


def _make_figures():
  """docs/make_figures.py as a module (docs/ is not a package)."""
  spec = importlib.util.spec_from_file_location(
    "make_figures", os.path.join(DOCS, "make_figures.py")
  )
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _linked_figures(page: str):
  for is_image, _, target in LINK.findall(_read(page)):
    if is_image and not re.match(r"[a-z]+:", target):
      yield os.path.normpath(os.path.join(os.path.dirname(page), target))
  for target in re.findall(r'<img src="([^"]+)"', _read(page)):
    yield os.path.normpath(os.path.join(os.path.dirname(page), target))


def _definition_line(lines: list[str], name: str) -> int | None:
  """The 1-based line of `lines` that defines `name` (`def`, `class` or an assignment); for
  `Outer.inner`, the first definition of `inner` after that of `Outer`."""
  start = 0
  for part in name.split("."):
    part = re.escape(part)
    definition = re.compile(
      rf"\s*(?:async\s+)?(?:def|class)\s+{part}\b|\s*{part}\s*(?::[^=]*)?=(?!=)"
    )
    start = next((n for n in range(start, len(lines)) if definition.match(lines[n])), None)
    if start is None:
      return None
  return start + 1


@pytest.mark.parametrize("page", PAGES, ids=os.path.basename)
def test_code_links_anchor_the_line_that_defines_their_symbol(page):
  for name, target, anchor in SYMBOL_LINK.findall(_read(page)):
    path = os.path.normpath(os.path.join(os.path.dirname(page), target))
    if name.endswith(".py") or name == os.path.splitext(os.path.basename(path))[0]:
      continue  # a link to the file itself
    lines = _read(path).split("\n")
    line = _definition_line(lines, name)
    assert line, f"{page}: {target} defines no {name}"
    if not anchor and os.path.basename(page) in UNANCHORED_PAGES:
      continue
    assert anchor, f"{page}: the link to {name} has no line anchor; link {target}#L{line}"
    assert _definition_line(lines[int(anchor) - 1 :], name.split(".")[-1]) == 1, (
      f"{page}: {target}#L{anchor} is not where {name} is defined; it is #L{line}"
    )


def test_every_chapter_has_a_page():
  names = {os.path.basename(p) for p in PAGES}
  chapters = {
    "primer",
    "basics",
    "vision",
    "sequence",
    "rl",
    "vaes",
    "gans",
    "benchmarks",
    "scaling",
  }
  assert {f"{c}.md" for c in chapters} <= names
  readme = _read(os.path.join(REPO, "README.md"))
  for chapter in chapters:
    assert f"(docs/{chapter}.md)" in readme, f"README's Chapters section misses {chapter}.md"


def _function_source(path: str, name: str) -> str | None:
  """The dedented source of function or class `name` (`outer.inner`: nested) in `path`, from its
  first decorator to its last line."""
  source = _read(path)
  nodes = ast.parse(source).body
  node = None
  for part in name.split("."):
    node = next((n for n in nodes if getattr(n, "name", None) == part), None)
    if node is None:
      return None
    nodes = node.body
  first = min([node.lineno] + [d.lineno for d in node.decorator_list])
  return textwrap.dedent("\n".join(source.split("\n")[first - 1 : node.end_lineno])) + "\n"


@pytest.mark.parametrize("page", PAGES, ids=os.path.basename)
def test_code_excerpts_are_the_source(page):
  for path, name, excerpt in EXCERPT.findall(_read(page)):
    source = _function_source(os.path.join(REPO, path), name)
    assert source is not None, f"{page}: {path} has no function {name} to excerpt"
    assert excerpt == source, f"{page}: the excerpt of {path} {name} is not its source:\n{source}"


def test_every_chapter_shows_its_loss():
  for chapter in ("basics", "vision", "sequence", "rl", "vaes", "gans"):
    names = [name for _, name, _ in EXCERPT.findall(_read(os.path.join(DOCS, f"{chapter}.md")))]
    assert any("loss" in name for name in names), f"docs/{chapter}.md excerpts no loss"


# The papers each chapter builds on, by an identifier of their link in its References.
CITATIONS = {
  "basics.md": {"Adam": "1412.6980", "AdamW": "1711.05101"},
  "vision.md": {"ResNet": "1512.03385", "BatchNorm": "1502.03167", "AdamW": "1711.05101"},
  "sequence.md": {"Transformer": "1706.03762", "LSTM": "neco.1997.9.8.1735", "AdamW": "1711.05101"},
  "rl.md": {"PPO": "1707.06347", "GAE": "1506.02438", "DQN": "nature14236", "Double": "1509.06461"},
  "vaes.md": {"VAE": "1312.6114", "IWAE": "1509.00519", "Adam": "1412.6980"},
  "gans.md": {"GAN": "1406.2661", "DCGAN": "1511.06434", "FID": "1706.08500", "BN": "1502.03167"},
}


@pytest.mark.parametrize("page", sorted(CITATIONS))
def test_chapters_cite_the_papers_they_use(page):
  references = _read(os.path.join(DOCS, page)).split("\n## References\n")
  assert len(references) == 2, f"docs/{page} has no References section"
  for paper, identifier in CITATIONS[page].items():
    assert identifier in references[1], f"docs/{page}'s References miss {paper} ({identifier})"


def test_the_primers_snippets_run_and_cover_its_topics():
  """docs/primer.md's python blocks, in order, as one program in a fresh interpreter (as a reader
  runs them); their asserts check what the prose says."""
  page = _read(os.path.join(DOCS, "primer.md"))
  headings = " ".join(re.findall(r"^## (.*)$", page, re.MULTILINE)).lower()
  for topic in ("jit", "grad", "vmap", "scan", "prng keys", "pytrees", "sharding"):
    assert topic in headings, f"docs/primer.md has no section on {topic}"
  program = "\n".join(re.findall(r"^```python\n(.*?)^```$", page, re.MULTILINE | re.DOTALL))
  out = subprocess.run(
    [sys.executable, "-c", program],
    check=False,
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert out.returncode == 0, f"docs/primer.md's snippets failed:\n{out.stderr[-3000:]}"


@pytest.mark.parametrize("page", PAGES, ids=os.path.basename)
def test_commands_name_configs_that_exist_and_parse(page):
  text = _command_lines(page)
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
def test_commands_name_modules_flags_races_and_workloads_that_exist(page):
  for module, rest in MODULE_COMMAND.findall(_command_lines(page)):
    path = os.path.join(REPO, *module.split(".")) + ".py"
    assert os.path.exists(path), f"{page} runs {module}, which does not exist"
    source = _read(path)
    for flag, value in FLAG.findall(rest):
      if "." in flag:
        continue  # --config.KEY=VALUE, checked against the config above
      assert re.search(rf'DEFINE_\w+\(\s*"{flag}"', source), f"{page}: {module} has no --{flag}"
      if module == "benchmarks.race" and flag == "race":
        assert value in RACES, f"{page}: {value!r} is not one of the races {sorted(RACES)}"
      if flag == "models":
        unknown = set(value.split(",")) - set(WORKLOADS)
        assert not unknown, f"{page}: {module} has no workloads {sorted(unknown)}"
  for chapters in CHAPTERS_COMMAND.findall(_read(page)):
    unknown = set(chapters.split(",")) - set(_make_figures().FIGURES_OF)
    assert not unknown, f"{page}: docs/make_figures.py has no chapters {sorted(unknown)}"


@pytest.mark.parametrize("page", PAGES, ids=os.path.basename)
def test_links_and_figures_point_at_files_that_exist(page):
  for is_image, text, target in LINK.findall(_read(page)):
    if re.match(r"[a-z]+:", target) or target.startswith("#"):
      continue  # a web address or an anchor on the page
    path = os.path.normpath(os.path.join(os.path.dirname(page), target.split("#")[0]))
    assert os.path.exists(path), f"{page} links to {target}, which does not exist"
    name = re.fullmatch(r"`([\w.]+)`", text)
    if name and path.endswith(".py") and not name.group(1).endswith(".py"):
      identifier = name.group(1).split(".")[-1]
      assert re.search(rf"\b{identifier}\b", _read(path)), f"{page}: {target} has no {identifier}"
  for path in _linked_figures(page):
    assert os.path.exists(path), f"{page} shows {path}, which does not exist"
    assert os.path.getsize(path) < MAX_FIGURE_BYTES, f"{path} is over 100 KB"


def test_every_figure_is_shown_and_written_by_make_figures():
  shown = {path for page in PAGES for path in _linked_figures(page)}
  make_figures = _read(os.path.join(DOCS, "make_figures.py"))
  for path in sorted(glob.glob(os.path.join(FIGURES, "*"))):
    name = os.path.basename(path)
    assert path in shown, f"docs/figures/{name} is on no page; remove it or show it"
    stem = os.path.splitext(name)[0]
    assert f'"{stem}"' in make_figures, f"docs/make_figures.py does not write {name}"
