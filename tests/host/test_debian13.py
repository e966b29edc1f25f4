"""Debian 13 (trixie): all-in-one (omero_database + omero_web) on a systemd host over SSH,
with PostgreSQL 17 and OMERO.web on Python 3.13 (IcePy 3.6.5 built for it)."""

import pytest

from .checks import login_page
from .testhosts import DEBIAN13_SYSTEMD, SUBNET, SystemdHost, deployed, hosts_with_changes

UNITS = ("postgresql@17-main.service", "omero-web.service", "nginx.service")


@pytest.fixture(scope="module")
def trixie(tmp_path_factory, secrets_dir):
    host = SystemdHost("trixie", f"{SUBNET}.60", image=DEBIAN13_SYSTEMD, python_tag="cp313")
    with deployed(host, ["omero_database", "omero_web"], tmp_path_factory.mktemp("trixie"),
                  secrets_dir) as deployed_host:
        yield deployed_host


def test_debian_13_with_postgresql_17_and_python_3_13(trixie):
    assert trixie.run(". /etc/os-release && echo $VERSION_ID").stdout.strip() == "13"
    assert trixie.testinfra.package("postgresql-17").is_installed
    version = trixie.run("/opt/omero/web/venv3/bin/python -c 'import sys, Ice; "
                         "print(sys.version_info[:2], Ice.stringVersion())'").stdout.strip()
    assert version == "(3, 13) 3.6.5"


def test_units_active_and_page_served(trixie):
    for unit in UNITS:
        assert trixie.testinfra.service(unit).is_running and trixie.testinfra.service(unit).is_enabled, unit
    login_page(f"http://{trixie.address}")


def test_second_run_changes_nothing(trixie):
    assert hosts_with_changes(trixie.inventory) == {}
