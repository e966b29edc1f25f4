"""The example inventories use only our groups and options, spelled right."""

import runpy
from pathlib import Path

import pytest

from deploys.options import DEFAULTS
from deploys.topology import ROLES

pytestmark = pytest.mark.plan

INVENTORIES = sorted((Path(__file__).resolve().parents[2] / "inventories").glob("*.py"))


def test_there_are_examples():
    names = {path.stem for path in INVENTORIES}
    assert {"single-host", "split", "local", "container"} <= names


@pytest.mark.parametrize("path", INVENTORIES, ids=lambda path: path.stem)
def test_inventory_uses_known_groups_and_options(path):
    # pyinfra reads module-level lists as groups of hosts, each a name or (name, data).
    groups = {name: value for name, value in runpy.run_path(str(path)).items()
              if isinstance(value, list)}
    assert groups and set(groups) <= set(ROLES), f"groups {sorted(groups)}"
    for hosts in groups.values():
        for host in hosts:
            data = host[1] if isinstance(host, tuple) else {}
            unknown = [key for key in data if key.startswith("omero_") and key not in DEFAULTS]
            assert not unknown, f"{path.name}: unknown options {unknown}"
