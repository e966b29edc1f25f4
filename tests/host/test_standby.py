"""test_farm_standby.py's tests on a site of two hosts only (a primary and its standby), for
working on the standby without the farm's other hosts; OMERO_TEST_FARM_BASE places them."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from .farm import BASE
from .test_farm_standby import *  # noqa: F403 - the same tests, on this module's site
from .testhosts import KEEP, SUBNET, SystemdHost, deploy, host_data, write_inventory


@dataclass
class Pair:
    """As much of the farm (tests/host/farm.py) as the standby's tests use."""

    directory: Path
    secrets_dir: Path
    database: SystemdHost
    standby: SystemdHost | None
    inventory: Path | None = None

    def groups(self) -> dict[str, list[SystemdHost]]:
        return {"omero_database": [self.database], **({"omero_database_standby": [self.standby]}
                                                        if self.standby else {})}

    def deploy(self):
        hosts = [host for hosts in self.groups().values() for host in hosts]
        self.inventory = write_inventory(self.directory / "pair.py", self.groups(), {
            host.name: host_data(host, self.secrets_dir) for host in hosts})
        return deploy(self.inventory, *hosts)


@pytest.fixture(scope="module")
def site(tmp_path_factory, secrets_dir):
    pair = Pair(tmp_path_factory.mktemp("pair"), secrets_dir,
                SystemdHost(f"pair{BASE}-db", f"{SUBNET}.{BASE + 8}"),
                SystemdHost(f"pair{BASE}-standby", f"{SUBNET}.{BASE + 9}"))
    hosts = [pair.database, pair.standby]
    try:
        for host in hosts:
            host.create()
        pair.deploy()
        yield pair
    finally:
        if not KEEP:
            for host in hosts:
                host.destroy()
