"""Upgrades: a new OMERO.server version in place (stop, dump, new directory, symlink);
OMERO.web's static files collected afresh."""

import re

import pytest

from .conftest import ALL_ROLES

pytestmark = pytest.mark.plan

SYMLINK = "readlink /opt/omero/server/OMERO.server"


def test_version_change_stops_dumps_then_moves_the_symlink(deploy):
    run = deploy({"aio": (ALL_ROLES, {})},
                 responses={SYMLINK: ["/opt/omero/server/OMERO.server-5.6.15-ice36"]})["aio"]
    commands = run.commands
    stop = commands.index("systemctl stop omero-server.service")
    (dump,) = [i for i, c in enumerate(commands) if "pg_dump" in c]
    assert "runuser -u omero-server -- pg_dump -w -Fc -h localhost" in commands[dump]
    assert "/opt/omero/server/backups/omero-5.6.15-before-5.6.16.pgdump" in commands[dump]
    unpack = next(i for i, c in enumerate(commands) if "unzip -q" in c)
    link = next(i for i, c in enumerate(commands)
                if "ln -s" in c and "OMERO.server-5.6.16-ice36" in c)
    assert stop < dump < unpack < link


@pytest.mark.parametrize("found", [[], ["/opt/omero/server/OMERO.server-5.6.16-ice36"]],
                         ids=["first install", "same version"])
def test_no_stop_or_dump_without_a_version_change(deploy, found):
    commands = deploy({"aio": (ALL_ROLES, {})}, responses={SYMLINK: found})["aio"].commands
    assert not [c for c in commands if "pg_dump" in c or "systemctl stop omero-server" in c]


def test_web_static_files_collected_afresh(deploy):
    # An upgraded app's older files (hashed bundle names) must not stay served beside the new.
    # The new release's code is newer than the last collection.
    changed = {re.compile(r"-newer \S*omero-web-static-collected"):
               ["/opt/omero/web/venv3/lib/python3.12/site-packages"]}
    commands = deploy({"web": (("omero_web",), {})}, responses=changed)["web"].commands
    (sync,) = [i for i, c in enumerate(commands) if "web syncmedia" in c]
    assert "find /opt/omero/web/OMERO.web/var/static -mindepth 1 -delete" in commands[sync - 1]
