import os
import shutil

import pytest

from .testhosts import ChrootHost, deployed


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
    with deployed(ChrootHost("allinone", "127.0.0.2"), ["omero_database", "omero_web"],
                  tmp_path_factory.mktemp("allinone"), secrets_dir) as host:
        yield host
