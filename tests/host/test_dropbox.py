"""OMERO.dropbox's directory for real on a systemd host: the server user and data
directories as an omero_server host gets them (the server itself needs the zip, which
cannot be had here), a second run that changes nothing, then a user's folder made as the
README says and used by two lab accounts, and the option turned off again."""

import shlex

import pytest

from ..docs_commands import block
from .testhosts import ADMIN, SUBNET, SystemdHost, host_data, hosts_with_changes, pyinfra, write_inventory

DEPLOY = "tests/host/deploy_dropbox.py"
DROPBOX = "/OMERO/DropBox"


def deploy(host, directory, secrets_dir, enabled: bool):
    """The DropBox steps with ``omero_server_dropbox`` on or off; returns the inventory."""
    # A group of no role: the steps run are those deploy_dropbox.py names.
    inventory = write_inventory(directory / f"dropbox-{'on' if enabled else 'off'}.py", {"lab": [host]},
                                {host.name: host_data(host, secrets_dir, omero_server_dropbox=enabled)})
    result = pyinfra(inventory, "-y", deploy_file=DEPLOY)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return inventory


@pytest.fixture(scope="module")
def host(tmp_path_factory, secrets_dir):
    host = SystemdHost("dropbox", f"{SUBNET}.110").create()
    try:
        deploy(host, tmp_path_factory.mktemp("dropbox"), secrets_dir, enabled=True)
        yield host
    finally:
        host.destroy()


def as_user(host, user: str, command: str, check: bool = True):
    return host.run(f"su -s /bin/sh {user} -c '{command}'", check=check)


def test_layout(host):
    expected = {"/OMERO": 0o2751, "/OMERO/ManagedRepository": 0o2770, DROPBOX: 0o2751}
    for path, mode in expected.items():
        found = host.testinfra.file(path)
        assert found.is_directory and (found.user, found.group, found.mode) == ("omero-server", "omero", mode), path
    assert host.testinfra.user("omero-server").groups == ["omero-server", "omero"]


def test_second_run_changes_nothing(host):
    assert hosts_with_changes(host.inventory, deploy_file=DEPLOY) == {}


def test_a_users_folder_as_the_readme_makes_it(host):
    for account in ("amy", "bob"):
        host.run(f"id {account} >/dev/null 2>&1 || useradd -m -s /bin/sh {account}")
    # The README's command as written, typed by the host's administrator (sudo, not root).
    readme = block("README.md", "sudo install -d -o amy -g omero -m 2770 /OMERO/DropBox/amy")
    host.run(f"runuser -u {ADMIN} -- sh -e -c {shlex.quote(readme)}")
    # amy copies in a file and a folder of files, with the usual umask (022).
    as_user(host, "amy", f"umask 022 && cp /etc/hostname {DROPBOX}/amy/a.tif && mkdir {DROPBOX}/amy/run1 "
                         f"&& echo plane > {DROPBOX}/amy/run1/b.tif")
    for path in ("a.tif", "run1", "run1/b.tif"):
        found = host.testinfra.file(f"{DROPBOX}/amy/{path}")
        assert (found.user, found.group) == ("amy", "omero"), path  # the group from setgid
    assert host.testinfra.file(f"{DROPBOX}/amy/run1").mode & 0o2000  # and setgid passed on
    assert "omero" not in host.testinfra.user("amy").groups  # no write to the repository
    # The server reads it all; another account can neither look in nor make a folder.
    assert as_user(host, "omero-server", f"cat {DROPBOX}/amy/run1/b.tif").stdout == "plane\n"
    assert as_user(host, "bob", f"ls {DROPBOX}/amy", check=False).returncode != 0
    assert as_user(host, "bob", f"mkdir {DROPBOX}/bob", check=False).returncode != 0
    assert as_user(host, "amy", f"mkdir {DROPBOX}/root", check=False).returncode != 0
    # What the README warns of: a private file (umask 077) the server cannot read.
    as_user(host, "amy", f"umask 077 && echo private > {DROPBOX}/amy/c.tif")
    assert as_user(host, "omero-server", f"cat {DROPBOX}/amy/c.tif", check=False).returncode != 0


def test_turned_off_leaves_the_directory_and_files(host, tmp_path, secrets_dir):
    inventory = deploy(host, tmp_path, secrets_dir, enabled=False)
    assert host.testinfra.file(f"{DROPBOX}/amy/run1/b.tif").exists
    assert hosts_with_changes(inventory, deploy_file=DEPLOY) == {}
