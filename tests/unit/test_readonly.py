"""The read-only cluster's pieces (deploys/readonly.py): names, lines and lists it derives,
and the check of the shared group's number (deploys/users.py)."""

import shutil
import subprocess

import pytest
from pyinfra.api import OperationError

from deploys import readonly, readonly_hosts, users

from .conftest import FakeHost

pytestmark = pytest.mark.unit

MOUNT_UNITS = [
    ("/OMERO", "OMERO.mount"),
    ("/data/OMERO", "data-OMERO.mount"),
    ("/data/OMERO-ro/x.y", "data-OMERO\\x2dro-x.y.mount"),
    ("/srv/omero_data/.hidden", "srv-omero_data-.hidden.mount"),
    ("/.omero", "\\x2eomero.mount"),
    ("/srv/a b", "srv-a\\x20b.mount"),
    ("/srv/a+b@c", "srv-a\\x2bb\\x40c.mount"),  # every character omero_data_dir may hold
]


@pytest.mark.parametrize("path, unit", MOUNT_UNITS)
def test_mount_unit_is_named_as_systemd_names_it(path, unit):
    assert readonly.mount_unit(path) == unit


@pytest.mark.skipif(not shutil.which("systemd-escape"), reason="no systemd-escape on this machine")
@pytest.mark.parametrize("path", [path for path, _ in MOUNT_UNITS])
def test_mount_unit_agrees_with_systemd_escape(path):
    escaped = subprocess.run(["systemd-escape", "--path", "--suffix=mount", path], capture_output=True,
                             text=True, check=True).stdout.strip()
    assert readonly.mount_unit(path) == escaped


@pytest.mark.parametrize("server, source", [
    ("10.0.0.12", "10.0.0.12:/OMERO"),
    ("omero-rw.lab.example.org", "omero-rw.lab.example.org:/OMERO"),
    ("fd00::12", "[fd00::12]:/OMERO"),
])
def test_mount_source_brackets_ipv6(server, source):
    assert readonly.mount_source(server, "/OMERO") == source


@pytest.mark.parametrize("address, endpoint", [
    ("10.0.0.21", "10.0.0.21:4064"),
    ("ro1.lab.example.org", "ro1.lab.example.org:4064"),
    ("fd00::21", "ipv6@fd00::21:4064"),
])
def test_haproxy_server_endpoint(address, endpoint):
    assert readonly.haproxy_server(address) == endpoint


def test_export_line_names_each_client_with_the_read_only_options():
    options = "ro,root_squash,sync,no_subtree_check,sec=sys"
    assert readonly.export_line("/OMERO", ("10.0.0.21", "ro2.lab")) == (
        f"/OMERO 10.0.0.21({options}) ro2.lab({options})")


@pytest.mark.parametrize("servers, balancer, choice, expected", [
    (("rw",), None, "offered", [["rw", 4064, "omero"]]),
    (("rw",), "lb", "offered", [["rw", 4064, "omero"], ["lb", 4064, "omero-readonly"]]),
    (("rw",), "lb", "only", [["lb", 4064, "omero-readonly"]]),
    (("localhost",), None, "offered", [["localhost", 4064, "omero"]]),
])
def test_web_server_list(servers, balancer, choice, expected):
    assert readonly.web_server_list(servers, balancer, choice) == expected


def test_config_lines_say_why_before_each_setting():
    lines = readonly.config_lines(readonly.config("/var/lib/omero-server/BioFormatsCache")).splitlines()
    assert len(lines) == 2 * len(readonly.config("x"))
    for why, setting in zip(lines[::2], lines[1::2], strict=True):
        assert why.startswith("# ") and setting.startswith("config set -- "), (why, setting)
    # Values are quoted as the CLI splits them.
    assert "config set -- Ice.Admin.Endpoints 'tcp -h localhost'" in lines


@pytest.mark.parametrize("entry, outcome", [
    ("", "noop"),  # no group yet: groupadd gives it the number
    ("omero:x:546:omero-server", "noop"),
    ("omero:x:998:omero-server", "the group omero exists with the number 998, not omero_group_gid's 546"),
])
def test_group_numbered(monkeypatch, entry, outcome):
    fake = FakeHost({"Command": entry})
    monkeypatch.setattr(users, "host", fake)
    if outcome == "noop":
        assert list(users.group_numbered._inner("omero", 546)) == []
        assert fake.noops == ["the group omero is absent or number 546"]
    else:
        with pytest.raises(OperationError, match=outcome):
            list(users.group_numbered._inner("omero", 546))
    assert fake.fact_calls == [("Command", {"command": "getent group omero || true"})]


@pytest.mark.parametrize("source, version", [
    ("https://downloads.example.org/omero/OMERO.server-5.6.16-ice36.zip", "5.6.16"),
    ("/srv/artifacts/OMERO.server-5.6.16-ice36.zip", "5.6.16"),
    ("https://downloads.example.org/OMERO.server-5.6.17-ice36.zip?x=1", "5.6.17"),
    ("/srv/artifacts/server.zip", "/srv/artifacts/server.zip"),
    (None, None),
])
def test_server_version_of_an_artifact(source, version):
    assert readonly._version(source) == version


@pytest.mark.parametrize("present, commands", [
    (None, []),
    ({"mode": 644}, ["rm -f /etc/exports.d/omero.exports && exportfs -ra"]),
])
def test_an_export_left_by_an_earlier_cluster_is_removed(monkeypatch, present, commands):
    fake = FakeHost({"File": present})
    monkeypatch.setattr(readonly_hosts, "host", fake)
    assert list(readonly_hosts.not_exported._inner(readonly_hosts.EXPORTS)) == commands
    assert fake.noops == ([] if commands else ["/etc/exports.d/omero.exports is absent"])
