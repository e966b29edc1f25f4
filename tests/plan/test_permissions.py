"""The permission model as the deploy makes it: every owner, group and mode the plan of a
fresh host sets, compared with the table in docs/permissions.md, and the lines of the
units and the nginx site that confine what runs. A changed mode, owner, umask, sandbox
line or security header fails here before any host is touched."""

import re
from pathlib import Path

import pytest

from .conftest import ALL_ROLES

pytestmark = pytest.mark.plan

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "permissions.md"
# A host with every role but the backup host's, HTTPS, backups, DropBox and JupyterHub.
EVERYTHING = {"omero_nginx_server_name": "omero.lab.example.org", "omero_nginx_tls": "self-signed",
              "omero_backup_local_dir": "/srv/omero-backup", "omero_server_dropbox": True,
              "omero_http_proxy": "http://proxy.lab:3128"}
ROLES = (*ALL_ROLES, "omero_analysis")


def manifest(run) -> dict[str, tuple[str, str, str]]:
    """Path -> (owner, group, mode) as the plan leaves it: the last chown and chmod of each
    path, a staged secret's followed through its rename; '-' where the plan sets none."""
    owners: dict[str, str] = {}
    modes: dict[str, str] = {}
    for command in run.raw_commands:
        for words in (part.split() for part in command.split(" && ")):
            if words[:1] == ["chmod"] and len(words) == 3:
                modes[words[2]] = words[1]
            elif words[:1] == ["chown"] and len(words) == 3 and ":" in words[1]:
                owners[words[2]] = words[1]
            elif words[:2] == ["mv", "-f"] and len(words) == 4:
                for table in (owners, modes):
                    if words[2] in table:
                        table[words[3]] = table.pop(words[2])
    return {path: (*owners.get(path, "-:-").split(":"), modes.get(path, "-"))
            for path in sorted({*owners, *modes}) if not path.startswith("/tmp/")}


def documented() -> dict[str, tuple[str, str, str]]:
    """``| path | owner | group | mode | why |`` rows of docs/permissions.md."""
    rows = re.findall(r"^\| `(/[^`]*)` \| (\S+) \| (\S+) \| (\S+) \| .* \|$", DOC.read_text(), re.MULTILINE)
    return {path: (owner, group, mode) for path, owner, group, mode in rows}


@pytest.fixture(scope="module")
def everything(deploy, tmp_path_factory):
    data = {**EVERYTHING, "omero_secrets_dir": str(tmp_path_factory.mktemp("permissions-secrets"))}
    return deploy({"aio": (ROLES, data)}, os_name="debian12")["aio"]


def test_every_path_as_the_permission_model_says(everything):
    planned, expected = manifest(everything), documented()
    assert len(expected) > 50  # the table was read
    differences = {path: (planned.get(path), expected.get(path)) for path in {*planned, *expected}
                   if planned.get(path) != expected.get(path)}
    assert not differences, "path: (planned, docs/permissions.md)\n" + "\n".join(
        f"{path}: {pair}" for path, pair in sorted(differences.items()))


def test_nothing_writable_by_others(everything):
    for path, (_, _, mode) in manifest(everything).items():
        assert mode == "-" or not int(mode, 8) & 0o002, f"{path} is {mode}"


# Each unit's lines that confine it (systemd.exec(5)); the web faces the network.
CONFINED = ("ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
            "NoNewPrivileges=yes", "CapabilityBoundingSet=", "RestrictSUIDSGID=yes", "LockPersonality=yes",
            "ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectControlGroups=yes",
            "RestrictNamespaces=yes", "SystemCallFilter=@system-service")
UNITS = {
    "omero-server.service": (*CONFINED, "UMask=0007", "User=omero-server"),
    "omero-web.service": (*CONFINED, "UMask=0027", "User=omero-web", "MemoryDenyWriteExecute=yes",
                          "ProtectProc=invisible"),
}


@pytest.mark.parametrize("unit", UNITS)
def test_units_confine_what_they_run(everything, unit):
    lines = everything.uploads[f"/etc/systemd/system/{unit}"].splitlines()
    for line in UNITS[unit]:
        assert line in lines, f"{unit} lacks {line}"


# Every response of the site, errors included: nginx's version on none, and the headers.
SITE_HEADERS = ('add_header Strict-Transport-Security "max-age=63072000" always;',
                "add_header X-Content-Type-Options nosniff always;",
                "add_header Referrer-Policy strict-origin-when-cross-origin always;",
                "add_header Content-Security-Policy \"frame-ancestors 'self'\" always;",
                "proxy_set_header X-Forwarded-Proto $scheme;")


def test_site_sends_its_security_headers(everything):
    site = everything.uploads["/etc/nginx/conf.d/omero-web.conf"]
    lines = [line.strip() for line in site.splitlines()]
    for header in SITE_HEADERS:
        assert header in lines, header
    assert lines.count("server_tokens off;") == lines.count("server {")


@pytest.mark.parametrize("pid1", ["systemd", "bash"])
def test_server_rewrites_its_configuration_closed_to_others(deploy, tmp_path, pid1):
    """omero-py's `admin start` rewrites etc/grid/config.xml (the database password) through a
    file renamed into place, under the umask it starts with: the unit's, supervisord's."""
    run = deploy({"aio": (ALL_ROLES, {"omero_secrets_dir": str(tmp_path)})}, pid1=pid1)["aio"]
    program = next(text for path, text in run.uploads.items()
                   if path.endswith(("omero-server.service", "omero-server.conf", "omero-server.ini")))
    assert "&& umask 0007 && exec /opt/omero/server/venv3/bin/omero admin start --foreground" in program
