"""The permission model's lines as planned (docs/security.md): each mode, owner and umask that
keeps a secret or the binary repository from other accounts, so that a change of any one
fails here, not only on a host. The audit on real hosts (tests/host/audit.py) checks the
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


def directory(path: str, user: str, group: str, mode: str) -> list[str]:
    return [f"mkdir -p {path}", f"chmod {mode} {path}", f"chown {user}:{group} {path}"]


@pytest.fixture(scope="module")
def systemd_host(deploy):
    return deploy({"aio": (SERVER, {})}, os_name="debian12", responses=CONFIG_CHANGED)["aio"]


@pytest.fixture(scope="module")
def supervisord_host(deploy):
    return deploy({"aio": (SERVER, {})}, os_name="debian12", pid1="sh")["aio"]


@pytest.mark.parametrize("path, user, group, mode", [
    # config.xml (omero.db.pass, the store's password) is rewritten at every start: its directory closes it.
    (f"{SERVER_DIR}/etc/grid", "omero-server", "omero-server", "700"),
    (f"{SERVER_DIR}/etc", "omero-server", "omero", "750"),
    (f"{SERVER_DIR}/var", "omero-server", "omero-server", "750"),
    ("/var/lib/omero-server", "omero-server", "omero-server", "700"),
    ("/var/lib/omero-web", "omero-web", "omero-web", "700"),
    ("/var/lib/omero-server/certs", "omero-server", "omero-server", "700"),
    ("/opt/omero/server/config", "root", "omero-server", "750"),
    ("/opt/omero/server/backups", "omero-server", "omero-server", "700"),
    # The binary repository: passed through (DropBox folders), never listed or read by others.
    ("/OMERO", "omero-server", "omero", "2751"),
    ("/OMERO/ManagedRepository", "omero-server", "omero", "2770"),
    ("/opt/omero/web/OMERO.web/etc", "omero-web", "omero-web", "700"),
    ("/opt/omero/web/OMERO.web/etc/grid", "omero-web", "omero-web", "700"),
    ("/opt/omero/web/config", "root", "omero-web", "750"),
    ("/var/lib/omero-pyinfra", "root", "root", "700"),
])
def test_directory_modes(systemd_host, path, user, group, mode):
    for command in directory(path, user, group, mode):
        assert command in systemd_host.commands, command


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


@pytest.mark.parametrize("path, owner, mode", [
    ("/var/lib/omero-server/.pgpass", "omero-server:omero-server", "600"),
    ("/var/lib/omero-server/.certificate-password", "omero-server:omero-server", "600"),
    ("/opt/omero/server/config/00-omero-server.omero", "root:omero-server", "640"),
])
def test_secret_files_owner_and_mode(systemd_host, path, owner, mode):
    """secret_file stages the file, sets its owner and mode, then renames it into place."""
    (staged,) = [c.split()[2] for c in systemd_host.raw_commands if re.fullmatch(rf"mv -f \S+ {re.escape(path)}", c)]
    assert f"chown {owner} {staged}" in systemd_host.raw_commands
    assert f"chmod {mode} {staged}" in systemd_host.raw_commands
