"""The permission model's lines that are not a path's owner and mode (those are in
docs/permissions.md, checked by test_permissions.py): each service's umask under systemd
and supervisord, config.xml closed before each start, and what an earlier umask left open
in the binary repository closed. The audit on real hosts (tests/host/audit.py) checks the
outcome."""

import re

import pytest

pytestmark = pytest.mark.plan

SERVER = ("omero_database", "omero_server", "omero_web")
SERVER_DIR = "/opt/omero/server/OMERO.server-5.6.16-ice36"
CONFIG_XML = "/opt/omero/server/OMERO.server/etc/grid/config.xml"
# The configuration changed since it was last loaded (the ChangedSince fact): it is loaded.
CONFIG_CHANGED = {re.compile(r"omero-server-config-loaded\.done"): ["/opt/omero/server/config/00-omero-server.omero"]}
LISTED_DATA = re.compile(r"find /OMERO -mindepth 1 -maxdepth 1 ! -type l -perm /o=rwx")


@pytest.fixture(scope="module")
def systemd_host(deploy):
    return deploy({"aio": (SERVER, {})}, os_name="debian12", responses=CONFIG_CHANGED)["aio"]


@pytest.fixture(scope="module")
def supervisord_host(deploy):
    return deploy({"aio": (SERVER, {})}, os_name="debian12", pid1="sh")["aio"]


@pytest.mark.parametrize("unit, umask", [("omero-server", "0007"), ("omero-web", "0027")])
def test_umask_of_each_service(systemd_host, supervisord_host, unit, umask):
    unit_file = systemd_host.uploads[f"/etc/systemd/system/{unit}.service"]
    assert re.findall(r"^UMask=.*$", unit_file, re.M) == [f"UMask={umask}"]
    program = supervisord_host.uploads[f"/etc/supervisor/conf.d/{unit}.conf"]
    assert re.findall(r"^umask=.*$", program, re.M) == [f"umask={umask}"]


def test_config_xml_made_the_server_users_alone_before_each_start(systemd_host, supervisord_host):
    chmod = f"chmod 600 {CONFIG_XML}"
    load = [c for c in systemd_host.raw_commands if "load --glob" in c and "/opt/omero/server/" in c]
    assert load and all("umask 077 &&" in c and chmod in c for c in load)
    for start in (systemd_host.uploads["/etc/systemd/system/omero-server.service"],
                  supervisord_host.uploads["/etc/supervisor/conf.d/omero-server.conf"]):
        assert "(umask 077 && /opt/omero/server/venv3/bin/omero load" in start and chmod in start


@pytest.mark.parametrize("listed, dropbox, closed", [
    ("", False, []),
    ("Pixels\nFiles\nManagedRepository\n", False, ["Pixels", "Files", "ManagedRepository"]),
    ("Pixels\nDropBox\n", True, ["Pixels"]),
    ("DropBox\n", True, []),
])
def test_what_an_earlier_umask_left_open_in_the_repository_is_closed(deploy, listed, dropbox, closed):
    run = deploy({"aio": (SERVER, {"omero_server_dropbox": dropbox})}, os_name="debian12",
                 responses={LISTED_DATA: listed.splitlines()})["aio"]
    assert [c for c in run.commands if c.startswith("chmod o-rwx")] == [f"chmod o-rwx /OMERO/{name}" for name in closed]
