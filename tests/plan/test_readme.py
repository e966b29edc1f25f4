"""README.md's options table and deploys/defaults.py name the same options."""

import re
from pathlib import Path

import pytest

from deploys.defaults import OPTIONS

pytestmark = pytest.mark.plan

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_every_option():
    assert README.is_file(), "README.md is missing"
    options_section = README.read_text().split("\n## Options\n", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `(omero_\w+)`", options_section, re.M)
    assert len(documented) == len(set(documented)), "an option has two rows"
    assert sorted(documented) == sorted(option.name for option in OPTIONS)
