"""The pieces of the analysis environment decided on the machine running pyinfra: the data
tools' wheel (built here, byte for byte the same for the same sources, agreeing with
pyproject.toml), configurable-http-proxy's Node.js requirement, whether the hub's name is
one of OMERO.web's, and the per-user limits' grammars."""

import base64
import csv
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

from deploys import movein_wheel
from deploys.grammar import Bad, hub_name_clash, parse_cpus, parse_hub_name, parse_memory, proxy_node_major

pytestmark = pytest.mark.unit

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
# The deploy's own dependencies; the rest of pyproject.toml's are the data tools'.
DEPLOY_ONLY = {"pyinfra", "cryptography", "jinja2", "requests"}


@pytest.fixture(scope="module")
def wheel() -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(movein_wheel.build()))


def test_wheel_is_the_same_for_the_same_sources():
    assert movein_wheel.build() == movein_wheel.build()


def test_wheel_holds_every_module_of_the_data_tools(wheel):
    sources = sorted(movein_wheel.SOURCE.glob("*.py"))
    assert sources
    for source in sources:
        assert wheel.read(f"omero_movein/{source.name}") == source.read_bytes()
    assert not [name for name in wheel.namelist() if "__pycache__" in name]


def test_wheel_record_lists_every_file_with_its_hash(wheel):
    dist_info = f"omero_movein-{movein_wheel.VERSION}.dist-info"
    rows = list(csv.reader(io.StringIO(wheel.read(f"{dist_info}/RECORD").decode())))
    assert sorted(row[0] for row in rows) == sorted(wheel.namelist())
    for name, digest, size in rows:
        if name.endswith("RECORD"):
            assert (digest, size) == ("", "")
            continue
        data = wheel.read(name)
        expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert (digest, int(size)) == (f"sha256={expected}", len(data))
    assert "Tag: py3-none-any" in wheel.read(f"{dist_info}/WHEEL").decode().splitlines()
    assert f"Version: {movein_wheel.VERSION}" in wheel.read(f"{dist_info}/METADATA").decode().splitlines()
    assert movein_wheel.FILENAME == f"omero_movein-{movein_wheel.VERSION}-py3-none-any.whl"


def test_wheel_commands_are_pyprojects(wheel):
    entry_points = wheel.read(f"omero_movein-{movein_wheel.VERSION}.dist-info/entry_points.txt").decode()
    assert entry_points == "[console_scripts]\n" + "".join(
        f"{name} = {target}\n" for name, target in PYPROJECT["project"]["scripts"].items())
    assert movein_wheel.VERSION == PYPROJECT["project"]["version"]


def test_requirements_are_pyprojects_data_tools_dependencies():
    names = set()
    for requirement in map(Requirement, PYPROJECT["project"]["dependencies"]):
        if requirement.name not in DEPLOY_ONLY:
            names |= {requirement.name, *requirement.extras}
    assert names == set(movein_wheel.REQUIREMENTS)


@pytest.mark.parametrize(("version", "node"), [
    ("4.5.6", 10), ("4.6.3", 10), ("5.0.1", 18), ("5.1.0", 18), ("5.1.9", 18), ("5.2.0", 20), ("5.3.0", 20),
    ("6.0.0", 20),
])
def test_proxy_node_requirement(version, node):
    assert proxy_node_major(version) == node


@pytest.mark.parametrize(("hub", "web_names", "clash"), [
    ("jupyter.lab.org", ["omero.lab.org"], None),
    ("jupyter.lab.org", ["jupyter.lab.org"], "jupyter.lab.org"),
    ("jupyter.lab.org", ["omero.lab.org", "Jupyter.Lab.org"], "Jupyter.Lab.org"),
    ("jupyter.lab.org", ["*.lab.org"], "*.lab.org"),
    ("a.jupyter.lab.org", ["*.lab.org"], "*.lab.org"),  # nginx's wildcard: any depth below
    ("jupyter.lab.org", ["*.LAB.ORG"], "*.LAB.ORG"),
    ("lab.org", ["*.lab.org"], None),  # the wildcard's own base is not below it
    ("jupyter.lab.org", ["*.jupyter.lab.org"], None),
    ("jupyter.lab.org", ["*.ab.org"], None),  # a label boundary, not a suffix of letters
    ("xlab.org", ["*.lab.org"], None),
    ("jupyter.lab.org", ["10.0.0.5"], None),
    ("jupyter.lab.org", [], None),  # '_' alone: names are the server names without it
])
def test_hub_name_clash(hub, web_names, clash):
    assert hub_name_clash(hub, web_names) == clash


@pytest.mark.parametrize(("value", "parsed"), [
    ("jupyter.lab.example.org", "jupyter.lab.example.org"), ("Jupyter.LAB.org", "jupyter.lab.org"),
    ("hub", "hub"), ("hub-1.lab", "hub-1.lab"),
    ("*.lab.org", None), ("_", None), ("10.0.0.5", None), ("::1", None), ("hub.lab.org.", None),
    ("hub lab", None), ("-hub.lab", None), ("hub_1.lab", None), ("", None), (None, None), (["hub"], None),
])
def test_hub_name_grammar(value, parsed):
    if parsed is None:
        with pytest.raises(Bad):
            parse_hub_name(value)
    else:
        assert parse_hub_name(value) == parsed


@pytest.mark.parametrize(("value", "parsed"), [
    ("2G", "2G"), ("2g", "2G"), ("256M", "256M"), ("512m", "512M"), ("1024G", "1024G"), ("1048576M", "1048576M"),
    ("255M", None), ("1025G", None), ("0G", None), ("02G", None), ("2T", None), ("2GB", None), ("2", None),
    ("2 G", None), ("1.5G", None), ("-1G", None), ("infinity", None), (2 << 30, None), (None, None),
])
def test_memory_grammar(value, parsed):
    if parsed is None:
        with pytest.raises(Bad):
            parse_memory(value)
    else:
        assert parse_memory(value) == parsed


@pytest.mark.parametrize(("value", "good"), [
    (1, True), (0.5, True), (0.1, True), (256, True), (2.5, True),
    (0, False), (0.09, False), (256.5, False), (-1, False), (float("nan"), False), (float("inf"), False),
    (True, False), ("1", False), (None, False),
])
def test_cpus_grammar(value, good):
    if good:
        assert parse_cpus(value) == value
    else:
        with pytest.raises(Bad):
            parse_cpus(value)
