"""Templates read only the values their call names: none reaches for the settings object."""

from pathlib import Path

import jinja2
import jinja2.meta
import pytest

pytestmark = pytest.mark.unit

TEMPLATES = sorted((Path(__file__).resolve().parents[2] / "templates").rglob("*.j2"))


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_template_reads_no_settings_object(path):
    assert "settings" not in jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(path.read_text()))


def test_templates_found():
    assert TEMPLATES, "no templates/**/*.j2 found: the test above checked nothing"
