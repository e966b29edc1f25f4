"""The container inventory for real: a plain podman container (no systemd, so supervisord
runs the services), deployed with pyinfra's @docker connector as inventories/container.py
does (through podman's Docker API), then checked with @podman: the same container, no
change."""

import secrets
import signal

import pytest

from .audit import assert_clean
from .checks import login_page
from .testhosts import SUBNET, ContainerHost, deploy, host_data, hosts_with_changes, wait_for, write_inventory

SUPERVISORCTL = "supervisorctl -c /etc/supervisor/supervisord.conf"


@pytest.fixture(scope="module")
def password_env():
    # Generated secrets are kept per inventory name, and @docker/x and @podman/x are two
    # names for one container: both runs get the database password from the environment.
    return {"OMERO_DB_PASSWORD": secrets.token_urlsafe(18)}


@pytest.fixture(scope="module")
def container(tmp_path_factory, secrets_dir, docker_host, password_env):
    host = ContainerHost("container", f"{SUBNET}.30", connector="docker")
    try:
        host.create()
        inventory = write_inventory(tmp_path_factory.mktemp("container") / "container.py",
                                    {"omero_database": [host], "omero_web": [host]},
                                    {host.name: host_data(host, secrets_dir)})
        deploy(inventory, host, env=docker_host | password_env)
        yield host
    finally:
        host.destroy()


def test_supervisord_runs_everything_in_order(container):
    assert container.run("cat /proc/1/comm").stdout.strip() != "systemd"
    for program in ("postgresql", "omero-web", "nginx"):
        assert container.testinfra.supervisor(program).is_running, program
    assert container.testinfra.file("/usr/sbin/policy-rc.d").mode == 0o755


def test_login_page_through_nginx(container):
    login_page(f"http://{container.address}")


def test_podman_connector_sees_nothing_to_change(container, tmp_path, secrets_dir, password_env):
    container.connector = "podman"
    inventory = write_inventory(tmp_path / "container-podman.py",
                                {"omero_database": [container], "omero_web": [container]},
                                {container.name: host_data(container, secrets_dir)})
    assert hosts_with_changes(inventory, env=password_env) == {}


def test_killed_web_master_comes_back(container):
    old_pid = container.run(f"{SUPERVISORCTL} pid omero-web").stdout.strip()
    container.run(f"kill -{signal.SIGKILL.value} {old_pid}")

    def new_master_running():
        status = container.run(f"{SUPERVISORCTL} status omero-web", check=False).stdout
        return "RUNNING" in status and f"pid {old_pid}," not in status

    wait_for(new_master_running, "omero-web to come back", 60, interval=1)
    wait_for(lambda: login_page(f"http://{container.address}"), "the login page", 60, interval=1)


def test_permission_audit(container, secrets_dir, password_env, monkeypatch):
    # The database password came from the environment, as the deploy read it.
    monkeypatch.setenv("OMERO_DB_PASSWORD", password_env["OMERO_DB_PASSWORD"])
    assert_clean(container, secrets_dir, values=(password_env["OMERO_DB_PASSWORD"],))
