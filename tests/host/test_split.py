"""The split topology on two fresh hosts: PostgreSQL on one, OMERO.web + nginx on the other."""

import pytest
import requests
import testinfra

from .testhosts import ChrootHost, deploy, host_data, hosts_with_changes, write_inventory


@pytest.fixture(scope="module")
def split(tmp_path_factory, secrets_dir):
    database, web = ChrootHost("split-db", "127.0.0.3"), ChrootHost("split-web", "127.0.0.4")
    try:
        for host in (database, web):
            host.create()
            host.testinfra = testinfra.get_host(str(host.root), connection="chroot")
        inventory = write_inventory(
            tmp_path_factory.mktemp("split") / "split.py",
            {"omero_database": [database], "omero_web": [web]},
            {host.name: host_data(host, secrets_dir) for host in (database, web)},
        )
        deploy(inventory, database, web)
        yield database, web, inventory
    finally:
        for host in (database, web):
            host.destroy()


def test_each_host_has_only_its_part(split):
    database, web, _ = split
    assert database.testinfra.package("postgresql-15").is_installed
    assert not database.testinfra.package("nginx").is_installed
    assert not database.testinfra.file("/opt/omero/web").exists
    assert web.testinfra.package("nginx").is_installed
    assert not web.testinfra.package("postgresql-15").is_installed
    assert database.testinfra.supervisor("postgresql").is_running
    for program in ("omero-web", "nginx"):
        assert web.testinfra.supervisor(program).is_running


def test_database_not_reachable_without_a_server_host(split):
    database, _, _ = split
    # No omero_server host needs it, so PostgreSQL keeps to localhost.
    assert database.testinfra.socket("tcp://127.0.0.1:5432").is_listening
    assert not database.testinfra.socket(f"tcp://{database.address}:5432").is_listening


def test_web_served_from_its_own_host(split):
    _, web, _ = split
    response = requests.get(f"http://{web.address}/webclient/login/", timeout=30)
    assert response.status_code == 200 and "OMERO.web - Login" in response.text


def test_second_run_changes_nothing(split):
    assert hosts_with_changes(split[2]) == {}
