import os
import shutil
import subprocess

import pytest

from .farm import farm_site
from .testhosts import KEEP, PODMAN_ENV, WORK, remove_leftovers, wait_for

KINDS = {"test_systemd": "systemd", "test_https": "systemd", "test_split": "systemd", "test_debian13": "systemd",
         "test_convergence": "systemd", "test_server_runtime": "systemd", "test_backup": "systemd",
         "test_analysis": "systemd", "test_dropbox": "systemd", "test_upgrade": "systemd",
         "test_container": "container", "test_refusals": "container", "test_java": "container",
         "test_image": "container", "test_vm": "vm",
         "test_farm": "systemd", "test_farm_sessions": "systemd", "test_farm_standby": "systemd"}
KINDS |= {"test_readonly": "systemd", "test_readonly_balancer": "systemd"}
# Run by scripts/test in a second pytest beside the rest, so that the two take about as long,
# warm and cold (each run's times per module: artifacts/junit-*.xml): modules that make what
# no other module uses (the VM under emulation; Debian 13, its own image and IcePy wheel, and
# the upgrade that moves a site onto it; the container image; the HTTPS site; the host killed
# mid-deploy).
BESIDE = {"test_vm", "test_debian13", "test_upgrade", "test_image", "test_https", "test_convergence"}


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/host/" in str(item.fspath):
            item.add_marker(pytest.mark.host)
            module = item.module.__name__.rsplit(".", 1)[-1]
            kind = KINDS.get(module)
            if kind:
                item.add_marker(getattr(pytest.mark, kind))
            if module in BESIDE:
                item.add_marker(pytest.mark.beside)


@pytest.fixture(scope="session", autouse=True)
def _test_hosts_possible_and_cleaned():
    if os.geteuid() != 0:
        pytest.skip("host tests need root (debootstrap, rootful podman, qemu)")
    for tool in ("debootstrap", "podman"):
        if not shutil.which(tool):
            pytest.skip(f"host tests need {tool} (scripts/test installs it)")
    remove_leftovers()
    yield
    if not KEEP:
        remove_leftovers()


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory):
    """Where a module's deploys keep generated passwords (one module's hosts agree)."""
    return tmp_path_factory.mktemp("secrets")


@pytest.fixture(scope="session")
def farm(tmp_path_factory):
    """The site of several hosts (tests/host/farm.py), shared by the test_farm* modules."""
    yield from farm_site(tmp_path_factory)


@pytest.fixture(scope="session")
def docker_host():
    """podman's Docker-compatible API on a socket of its own, for pyinfra's @docker."""
    if not shutil.which("docker"):
        pytest.skip("the @docker connector needs the docker CLI")
    socket_path = WORK / "podman.sock"
    WORK.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
                               env=PODMAN_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(socket_path.exists, "podman's API socket", 30, interval=0.1)
        yield {"DOCKER_HOST": f"unix://{socket_path}"}
    finally:
        service.terminate()
        service.wait(30)
        socket_path.unlink(missing_ok=True)
