"""The split topologies without an OMERO.server: PostgreSQL on one systemd host, OMERO.web
on another, both deployed over SSH in one pyinfra run, in parallel, reaching each other
over the test network."""

import pytest
import requests

from .audit import assert_clean
from .checks import login_page
from .testhosts import SUBNET, SystemdHost, deployed_together, hosts_with_changes


@pytest.fixture(scope="module")
def split(tmp_path_factory, secrets_dir):
    database, web = SystemdHost("split-db", f"{SUBNET}.20"), SystemdHost("split-web", f"{SUBNET}.21")
    with deployed_together("split", {"omero_database": [database], "omero_web": [web]},
                           tmp_path_factory.mktemp("split"), secrets_dir) as hosts:
        yield hosts


def test_each_host_has_only_its_part(split):
    database, web = split
    assert database.testinfra.package("postgresql-15").is_installed
    assert database.testinfra.service("postgresql@15-main.service").is_running
    for absent in ("nginx", "openjdk-17-jre-headless"):
        assert not database.testinfra.package(absent).is_installed, absent
    assert not database.testinfra.file("/opt/omero").exists
    assert web.testinfra.package("nginx").is_installed
    assert not web.testinfra.package("postgresql-15").is_installed
    for unit in ("omero-web.service", "nginx.service"):
        assert web.testinfra.service(unit).is_running and web.testinfra.service(unit).is_enabled


def test_web_unit_not_tied_to_a_database_it_does_not_host(split):
    _, web = split
    after = web.run("systemctl show --value -p After omero-web.service").stdout.split()
    assert not any(unit.startswith("postgresql") for unit in after)


def test_database_keeps_to_localhost_without_a_server_host(split):
    database, web = split
    # No omero_server host needs it, so PostgreSQL is not on the network ...
    assert database.testinfra.socket("tcp://127.0.0.1:5432").is_listening
    assert not database.testinfra.socket(f"tcp://{database.address}:5432").is_listening
    # ... as the web host, across the test network, finds.
    probe = web.run(f"timeout 5 bash -c '</dev/tcp/{database.address}/5432'", check=False)
    assert probe.returncode != 0


def test_web_served_from_its_own_host(split):
    database, web = split
    login_page(f"http://{web.address}")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{database.address}/", timeout=5)


def test_second_run_changes_nothing(split):
    assert hosts_with_changes(split[0].inventory) == {}


def test_permission_audit(split, secrets_dir):
    for host in split:
        assert_clean(host, secrets_dir)
