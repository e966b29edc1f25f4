"""One deployed site of several hosts, shared by the farm's test modules (test_farm*.py):
a front proxy, three OMERO.web nodes, Redis for their sessions, PostgreSQL and its standby,
each a systemd test host on the test network, deployed in one pyinfra run.

The modules run in name order and each leaves the site as the inventory says, except the
take-over (test_farm_standby.py, last), which moves the database to the standby.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

from .testhosts import KEEP, SUBNET, SystemdHost, deploy, host_data, write_inventory

# The last byte of the first host's address; the hosts follow it. Another value (and its own
# container names) lets a second site run beside this one while its code is worked on.
BASE = int(os.environ.get("OMERO_TEST_FARM_BASE", "100"))


def _host(role: str, offset: int, **kwargs) -> SystemdHost:
    return SystemdHost(f"farm{BASE}-{role}", f"{SUBNET}.{BASE + offset}", **kwargs)


@dataclass
class Farm:
    """The site's hosts by role, its inventory and where its secrets are kept."""

    directory: Path
    secrets_dir: Path
    # Its port 80 published on 127.0.0.1: where the load tests send their requests.
    proxy: SystemdHost = field(default_factory=lambda: _host("proxy", 0, publish=(80,)))
    web: list[SystemdHost] = field(default_factory=lambda: [_host(f"web{n}", n) for n in (1, 2, 3)])
    # nftables loads the table admitting only the web nodes (a VM's root may; a container's needs it given).
    redis: SystemdHost = field(default_factory=lambda: _host("redis", 5, capabilities=("NET_ADMIN",)))
    database: SystemdHost = field(default_factory=lambda: _host("db", 6))
    # None once it has taken over (test_farm_standby.py): it is the database then.
    standby: SystemdHost | None = field(default_factory=lambda: _host("standby", 7))
    # Made on first use by the test that adds a web node.
    spare_web: SystemdHost = field(default_factory=lambda: _host("web4", 4))
    inventory: Path | None = None
    overrides: dict[str, dict] = field(default_factory=dict)

    def groups(self) -> dict[str, list[SystemdHost]]:
        """The inventory's groups as the site now is."""
        return {"omero_proxy": [self.proxy], "omero_web": list(self.web), "omero_redis": [self.redis],
                "omero_database": [self.database],
                **({"omero_database_standby": [self.standby]} if self.standby else {})}

    @property
    def hosts(self) -> list[SystemdHost]:
        return list({host.name: host for hosts in self.groups().values() for host in hosts}.values())

    def write_inventory(self) -> Path:
        self.inventory = write_inventory(self.directory / "farm.py", self.groups(), {
            host.name: host_data(host, self.secrets_dir, **self.overrides.get(host.name, {}))
            for host in self.hosts})
        return self.inventory

    def deploy(self, **kwargs):
        """The whole site deployed as its inventory now says."""
        return deploy(self.write_inventory(), *self.hosts, **kwargs)

    def destroy(self) -> None:
        for host in {host.name: host for host in [*self.hosts, self.spare_web]}.values():
            host.destroy()


def farm_site(tmp_path_factory):
    """The fixture's body (tests/host/conftest.py): every host made fresh, the site deployed."""
    farm = Farm(tmp_path_factory.mktemp("farm"), tmp_path_factory.mktemp("farm-secrets"))
    try:
        for host in farm.hosts:
            host.create()
        farm.deploy()
        yield farm
    finally:
        if not KEEP:
            farm.destroy()
