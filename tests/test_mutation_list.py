"""The mutation list (tests/mutations.py) stays true to the code: a refactor that moves the text a
mutation replaces, or renames a test that must catch it, is found here, not at the next mutation
run."""

import os
import re

import pytest

from tests.mutations import MUTATIONS, REPO


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_mutation_applies_and_names_existing_tests(mutation):
  with open(os.path.join(REPO, mutation.path)) as f:
    assert f.read().count(mutation.old) == 1, f"update {mutation.name}: its text moved"
  for node in mutation.tests:
    path, _, name = node.partition("::")
    with open(os.path.join(REPO, path)) as f:
      source = f.read()
    assert not name or re.search(rf"^def {re.escape(name)}\(", source, re.MULTILINE), node
