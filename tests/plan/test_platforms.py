"""An all-in-one host under systemd on each supported OS: the OS's packages and paths."""

import hashlib
import re

import pytest

from .conftest import ALL_ROLES
from .harness import SUPPORTED_OSES

pytestmark = pytest.mark.plan

EXPECTED = {
    "ubuntu22.04": {"postgres": "postgresql-14", "java": "openjdk-11-jre-headless",
                    "pg_conf": "/etc/postgresql/14/main", "pg_unit": "postgresql@14-main.service"},
    "ubuntu24.04": {"postgres": "postgresql-16", "java": "openjdk-11-jre-headless",
                    "pg_conf": "/etc/postgresql/16/main", "pg_unit": "postgresql@16-main.service"},
    "debian12": {"postgres": "postgresql-15", "java": "openjdk-17-jre-headless",
                 "pg_conf": "/etc/postgresql/15/main", "pg_unit": "postgresql@15-main.service"},
    "debian13": {"postgres": "postgresql-17", "java": "openjdk-21-jre-headless",
                 "pg_conf": "/etc/postgresql/17/main", "pg_unit": "postgresql@17-main.service"},
    "rocky9": {"postgres": "postgresql-server", "java": "java-11-openjdk-headless",
               "pg_conf": "/var/lib/pgsql/data", "pg_unit": "postgresql.service"},
}


def installed_packages(run) -> set[str]:
    """Package names in the apt-get / dnf install commands that ran."""
    packages = set()
    for command in run.commands:
        match = re.search(r"apt-get .* install (?:--no-install-recommends )?(.+)$|^dnf install -y (.+)$",
                          command)
        if match:
            packages.update((match.group(1) or match.group(2)).split())
    return packages


def position(run, command: str) -> int:
    return run.commands.index(command)


@pytest.fixture(scope="module", params=SUPPORTED_OSES)
def allinone(request, deploy):
    return request.param, deploy({"aio": (ALL_ROLES, {})}, os_name=request.param)["aio"]


def test_postgresql_and_java_packages(allinone):
    os_name, run = allinone
    expected = EXPECTED[os_name]
    packages = installed_packages(run)
    assert {expected["postgres"], expected["java"]} <= packages
    # No other OS's PostgreSQL or Java slipped in.
    others = {e[key] for e in EXPECTED.values() for key in ("postgres", "java")} - set(expected.values())
    assert not packages & others
    if os_name == "rocky9":
        assert "dnf module enable -y postgresql:16" in run.commands


def test_postgresql_paths(allinone):
    os_name, run = allinone
    conf = EXPECTED[os_name]["pg_conf"]
    assert "scram-sha-256" in run.uploads[f"{conf}/pg_hba.conf"]
    assert "listen_addresses = 'localhost'" in run.uploads[f"{conf}/conf.d/omero.conf"]
    # Only RHEL's postgresql.conf needs telling to read conf.d; only RHEL needs initdb.
    initdb = [c for c in run.commands if "postgresql-setup --initdb" in c]
    include = [c for c in run.commands if "include_dir = " in c and not c.startswith("grep")]
    if os_name == "rocky9":
        assert len(initdb) == 1 and "--encoding=UTF8" in initdb[0]
        assert include and f"{conf}/postgresql.conf" in include[0]
    else:
        assert not initdb and not include


def test_nginx_default_site(allinone):
    os_name, run = allinone
    assert "/etc/nginx/conf.d/omero-web.conf" in run.uploads
    if os_name == "rocky9":
        # RHEL's default server lives in nginx.conf, which is replaced by one without it.
        nginx_conf = run.uploads["/etc/nginx/nginx.conf"]
        assert "user nginx;" in nginx_conf and "server {" not in nginx_conf
        assert "rm -f /etc/nginx/sites-enabled/default" not in run.commands
    else:
        assert "rm -f /etc/nginx/sites-enabled/default" in run.commands
        assert "/etc/nginx/nginx.conf" not in run.uploads


def test_systemd_units_enabled_and_started(allinone):
    os_name, run = allinone
    server_unit = run.uploads["/etc/systemd/system/omero-server.service"]
    web_unit = run.uploads["/etc/systemd/system/omero-web.service"]
    # Ordered on the unit that really runs this OS's cluster.
    assert f"Requires={EXPECTED[os_name]['pg_unit']}" in server_unit
    assert "omero admin start --foreground" in server_unit and "User=omero-server" in server_unit
    # The web starts after what it needs on this host, as the deploy starts them.
    assert f"After=network.target {EXPECTED[os_name]['pg_unit']} omero-server.service" in web_unit
    for unit in (server_unit, web_unit):
        assert "ProtectSystem=strict" in unit and "NoNewPrivileges=yes" in unit
    assert "gunicorn --bind 127.0.0.1:4080 " in web_unit and " --workers 5 " in web_unit  # 2 * 2 CPUs + 1
    for service in ("postgresql", "omero-server", "omero-web", "nginx"):
        assert f"systemctl enable {service}.service" in run.commands
        assert f"systemctl start {service}.service" in run.commands
    # Units are reloaded between being written and being started.
    for unit in ("omero-server", "omero-web"):
        written = position(run, f"chmod 644 /etc/systemd/system/{unit}.service")
        assert "systemctl daemon-reload" in run.commands[written:position(run, f"systemctl start {unit}.service")]
    assert not any("supervisor" in command for command in run.commands)


def test_services_planned_in_dependency_order(allinone):
    _, run = allinone
    starts = [run.ops.index(f"Run and enable {service}")
              for service in ("postgresql", "omero-server", "omero-web", "nginx")]
    assert starts == sorted(starts)
    # Readiness waits sit between the starts: each service is up before the next needs it.
    waits = [run.ops.index(name) for name in ("Wait until PostgreSQL accepts connections",
                                              "Wait until OMERO.server accepts connections",
                                              "Wait until OMERO.web answers")]
    assert starts[0] < waits[0] < starts[1] < waits[1] < starts[2] < waits[2] < starts[3]


def test_nginx_drop_in_reloaded_before_start(allinone):
    _, run = allinone
    written = position(run, "chmod 644 /etc/systemd/system/nginx.service.d/omero-web.conf")
    started = position(run, "systemctl start nginx.service")
    assert "systemctl daemon-reload" in run.commands[written:started]


def test_rhel_repositories(allinone):
    os_name, run = allinone
    crb = "dnf config-manager --set-enabled crb"
    if os_name == "rocky9":
        # CodeReady Builder for Ice's libdb-cxx, before the Ice libraries are installed.
        assert position(run, crb) < next(
            i for i, c in enumerate(run.commands) if c.startswith("dnf install") and "libdb-cxx" in c)
        # EPEL only carries supervisor, not needed under systemd.
        assert "epel-release" not in installed_packages(run)
    else:
        assert crb not in run.commands
        assert not any(command.startswith("dnf ") for command in run.commands)


@pytest.mark.parametrize("os_name, compiler", [("debian12", "g++"), ("ubuntu22.04", "g++"), ("rocky9", "gcc-c++")])
@pytest.mark.parametrize("groups, wheel, builds", [
    (ALL_ROLES, False, True),
    (ALL_ROLES, True, False),
    (("omero_web",), False, True),
    (("omero_database",), False, False),
], ids=["all-in-one", "all-in-one given the wheel", "web", "database"])
def test_build_tools_only_where_icepy_is_built(deploy, tmp_path, os_name, compiler, groups, wheel, builds):
    data = {}
    if wheel:
        path = tmp_path / "zeroc_ice-3.6.5-cp312-cp312-linux_x86_64.whl"
        path.write_bytes(b"a wheel")
        data = {"omero_icepy_wheel": str(path), "omero_icepy_wheel_sha256": hashlib.sha256(b"a wheel").hexdigest()}
    run = deploy({"host": (groups, data)}, os_name=os_name)["host"]
    packages = installed_packages(run)
    assert "curl" in packages and (compiler in packages) == builds
