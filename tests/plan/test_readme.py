"""The README's options table and docs/malformed-input.md's are the options table's, as generated."""

import re

import pytest

from deploys.option_docs import GENERATED, ROOT, with_tables
from deploys.options import OPTIONS

pytestmark = pytest.mark.plan


@pytest.mark.parametrize("path", GENERATED)
def test_generated_table_is_current(path):
    text = (ROOT / path).read_text()
    assert text == with_tables(path, text), f"{path} is stale: run python -m deploys.option_docs --write"


@pytest.mark.parametrize("path", GENERATED)
def test_every_option_in_one_row(path):
    table = GENERATED[path]()
    named = [name for row in table.splitlines() if row.startswith("| `omero_")
             for name in re.findall(r"`(omero_\w+)`", row.split(" | ")[0])]
    assert sorted(named) == sorted(option.name for option in OPTIONS)


def test_a_stale_table_is_made_anew():
    path = "README.md"
    text = (ROOT / path).read_text()
    stale = text.replace("| `omero_db_port` | `5432` |", "| `omero_db_port` | `5433` |")
    assert stale != text and with_tables(path, stale) == text
