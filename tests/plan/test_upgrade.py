"""A new OMERO.server version upgrades in place: stop, dump, new directory, symlink."""

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
