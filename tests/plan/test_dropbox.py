"""OMERO.dropbox as planned on each OS: on, omero-dropbox goes into the server venv and the
DropBox directory is made setgid for the shared group; off, nothing of it is installed, and a
package an earlier run installed is uninstalled (the server restarted without it)."""

import re

import pytest

from .harness import VENV_LISTING, venv_listing

pytestmark = pytest.mark.plan

OSES = ("debian12", "ubuntu22.04", "ubuntu24.04", "rocky9")
SERVER = ("omero_database", "omero_server")
PIP = "/opt/omero/server/venv3/bin/pip"
# The server venv as an earlier run left it.
VENV = "/opt/omero/server/venv3"
WITH_DROPBOX = ["zeroc-ice==3.6.5", "omero-py==5.23.0", "omero-dropbox==5.7.0"]
WITHOUT_DROPBOX = ["zeroc-ice==3.6.5", "omero-py==5.23.0"]
# IcePy (only as a wheel, from the wheel cache) goes in with the rest.
INSTALL = f"{PIP} install --find-links /opt/omero/wheels --only-binary zeroc-ice"
MAKE_DROPBOX = ["mkdir -p /OMERO/DropBox", "chmod 2751 /OMERO/DropBox", "chown omero-server:omero /OMERO/DropBox"]
UNINSTALL = f"{PIP} uninstall --yes omero-dropbox"

CASES = [
    # (omero_server_dropbox, the venv found, the pip command expected, DropBox made, uninstalled)
    pytest.param(True, [], f"{INSTALL} zeroc-ice==3.6.5 omero-py==5.23.0 omero-dropbox==5.7.0",
                 True, False, id="on, fresh host"),
    pytest.param(True, WITHOUT_DROPBOX, f"{INSTALL} omero-dropbox==5.7.0", True, False,
                 id="on, server installed without it"),
    pytest.param(True, WITH_DROPBOX, None, True, False, id="on, already installed"),
    pytest.param(False, [], f"{INSTALL} zeroc-ice==3.6.5 omero-py==5.23.0", False, False,
                 id="off, fresh host"),
    pytest.param(False, WITH_DROPBOX, None, False, True, id="off, installed by an earlier run"),
]


def pip_installs(run) -> list[str]:
    """The server venv's pip installs."""
    return [c for c in run.commands if c.startswith(f"{PIP} install ")]


@pytest.mark.parametrize("os_name", OSES)
@pytest.mark.parametrize("enabled, found, install, made, uninstalled", CASES)
def test_dropbox_option(deploy, os_name, enabled, found, install, made, uninstalled):
    run = deploy({"server": (SERVER, {"omero_server_dropbox": enabled})}, os_name=os_name,
                 responses={VENV_LISTING: venv_listing(VENV, found)})["server"]
    assert pip_installs(run) == ([install] if install else [])
    assert all(command in run.commands for command in MAKE_DROPBOX) == made
    assert (UNINSTALL in run.commands) == uninstalled
    if not enabled:
        assert not [c for c in run.commands if "DropBox" in c]
        assert not [c for c in run.commands if "dropbox" in c and c != UNINSTALL]


def test_directory_follows_the_data_dir_group_and_version(deploy):
    data = {"omero_server_dropbox": True, "omero_data_dir": "/srv/omero-data", "omero_group": "imaging",
            "omero_dropbox_version": "5.6.2"}
    run = deploy({"server": (SERVER, data)}, responses={VENV_LISTING: venv_listing(VENV, WITHOUT_DROPBOX)})["server"]
    assert pip_installs(run) == [f"{INSTALL} omero-dropbox==5.6.2"]
    for command in ("mkdir -p /srv/omero-data/DropBox", "chmod 2751 /srv/omero-data/DropBox",
                    "chown omero-server:imaging /srv/omero-data/DropBox"):
        assert command in run.commands
    # Made after the data directory it is in.
    assert run.ops.index("Create the OMERO data directory") < run.ops.index("Create the DropBox directory")


def test_no_setting_is_written_for_it(deploy):
    # OMERO watches <omero.data.dir>/DropBox when omero.fs.watchDir is unset.
    run = deploy({"server": (SERVER, {"omero_server_dropbox": True})})["server"]
    config = run.uploads["/opt/omero/server/config/00-omero-server.omero"]
    assert "omero.fs." not in config and "config set -- omero.data.dir /OMERO" in config


@pytest.mark.parametrize("enabled, found", [(False, WITH_DROPBOX), (True, WITHOUT_DROPBOX)],
                         ids=["turned off", "turned on"])
def test_running_server_restarted_after_the_change(deploy, enabled, found):
    running = {
        VENV_LISTING: venv_listing(VENV, found),
        re.compile(r"systemctl show --all -p Id -p UnitFileState -p SubState"):
            ["Id=omero-server.service", "SubState=running"],
        # The venv's site-packages changed since the server was started (ChangedSince).
        re.compile(r"omero-server-started\.done"): ["/opt/omero/server/venv3/lib/python3.12/site-packages"],
    }
    run = deploy({"server": (SERVER, {"omero_server_dropbox": enabled})}, responses=running)["server"]
    change = next(i for i, c in enumerate(run.commands) if c == UNINSTALL or c.endswith("omero-dropbox==5.7.0"))
    assert change < run.commands.index("systemctl restart omero-server.service")
