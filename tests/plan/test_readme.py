"""README.md's options table and deploys/defaults.py name the same options."""

import re
from pathlib import Path

import pytest

from deploys.defaults import OPTIONS

pytestmark = pytest.mark.plan

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_every_option():
    assert README.is_file(), "README.md is missing"
    documented = re.findall(r"^\| `(omero_\w+)`", README.read_text(), re.M)
    assert len(documented) == len(set(documented)), "an option has two rows"
    assert sorted(documented) == sorted(option.name for option in OPTIONS)
