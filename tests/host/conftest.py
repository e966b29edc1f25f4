import os
import shutil

import pytest
import testinfra

from .testhosts import ChrootHost, deploy, host_data, write_inventory


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/host/" in str(item.fspath):
            item.add_marker(pytest.mark.host)


@pytest.fixture(scope="session", autouse=True)
def _can_make_test_hosts():
    if os.geteuid() != 0:
        pytest.skip("host tests need root (debootstrap, chroot, mounts)")
    if not shutil.which("debootstrap"):
        pytest.skip("host tests need debootstrap (apt-get install debootstrap)")


@pytest.fixture(scope="session")
def secrets_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("secrets")


@pytest.fixture(scope="module")
def allinone(tmp_path_factory, secrets_dir):
    """One fresh host in omero_database + omero_web, deployed once for the module."""
    host = ChrootHost("allinone", "127.0.0.2").create()
    try:
        inventory = write_inventory(
            tmp_path_factory.mktemp("allinone") / "allinone.py",
            {"omero_database": [host], "omero_web": [host]},
            {host.name: host_data(host, secrets_dir)},
        )
        deploy(inventory, host)
        host.inventory = inventory
        host.testinfra = testinfra.get_host(str(host.root), connection="chroot")
        yield host
    finally:
        host.destroy()
