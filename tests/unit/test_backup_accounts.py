"""The omero_backup host's account per OMERO host: a valid user name (at most 32, a-z, 0-9,
'_', '-'), readable where it fits, and never the same for two repository directories."""

import re

import pytest

from deploys import secrets
from deploys.topology import backup_account

pytestmark = pytest.mark.unit

ACCOUNT = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


@pytest.mark.parametrize("user, host, account", [
    ("omero-backup", "backup-aio", "omero-backup-backup-aio"),
    ("omero-backup", "@fake/aio", "omero-backup-fake_aio"),
    ("omero-backup", "db1.lab", "omero-backup-db1-lab"),
    ("omero-backup", "OMERO-DB", "omero-backup-omero-db"),
    ("omero-backup", "@podman/x", "omero-backup-podman_x"),
    ("b", "a" * 30, "b-" + "a" * 30),  # 32: as it is
    # Longer: cut, and a hash of the whole directory name keeps it apart from its neighbours.
    ("b", "a" * 31, "b-" + "a" * 21 + "-61c60b48"),
    ("omero-backup", "omero.lab.example.org", "omero-backup-omero-lab-2cd36f95"),
])
def test_account_names(user, host, account):
    name = backup_account(user, secrets.file_name(host))
    assert name == account
    assert ACCOUNT.fullmatch(name) and len(name) <= 32


@pytest.mark.parametrize("first, second", [
    ("omero.lab.example.org", "omero.lab.example.com"),  # cut to the same 23 characters
    ("a" * 40, "a" * 41),
    ("omero-db-01.lab.example.org", "omero-db-02.lab.example.org"),
])
def test_long_names_stay_apart(first, second):
    accounts = {backup_account(user, secrets.file_name(host))
                for user in ("omero-backup",) for host in (first, second)}
    assert len(accounts) == 2 and all(len(account) <= 32 for account in accounts)
