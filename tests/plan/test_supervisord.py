"""Hosts whose PID 1 is not systemd (containers, chroots): services run under supervisord."""

import pytest

from .conftest import ALL_ROLES

pytestmark = pytest.mark.plan

SERVICES = ("postgresql", "omero-server", "omero-web", "nginx")
LAYOUT = {  # program file pattern, supervisord.conf
    "ubuntu22.04": ("/etc/supervisor/conf.d/{}.conf", "/etc/supervisor/supervisord.conf"),
    "debian12": ("/etc/supervisor/conf.d/{}.conf", "/etc/supervisor/supervisord.conf"),
    "rocky9": ("/etc/supervisord.d/{}.ini", "/etc/supervisord.conf"),
}


@pytest.fixture(scope="module", params=sorted(LAYOUT))
def container(request, deploy):
    return request.param, deploy({"aio": (ALL_ROLES, {})}, os_name=request.param, pid1="bash")["aio"]


def test_programs_written_and_started(container):
    os_name, run = container
    program_path, conf = LAYOUT[os_name]
    for priority, service in enumerate(SERVICES, start=1):
        program = run.uploads[program_path.format(service)]
        assert f"[program:{service}]" in program
        # Boot order: PostgreSQL, then the server, the web, nginx.
        assert f"priority={priority * 100}\n" in program
    assert "user=omero-server\n" in run.uploads[program_path.format("omero-server")]
    assert f"supervisord -c {conf}" in run.commands


def test_no_systemd_at_all(container):
    _, run = container
    assert not [command for command in run.commands if "systemctl" in command]
    assert not [path for path in run.uploads if path.startswith("/etc/systemd")]


def test_package_scripts_kept_from_starting_services(container):
    os_name, run = container
    if os_name == "rocky9":
        assert "/usr/sbin/policy-rc.d" not in run.uploads
    else:
        assert "exit 101" in run.uploads["/usr/sbin/policy-rc.d"]
        # In place before the first package is installed.
        first_install = next(i for i, c in enumerate(run.commands) if "apt-get" in c and " install " in c)
        chmod = run.commands.index("chmod 755 /usr/sbin/policy-rc.d")
        assert chmod < first_install


def test_supervisor_installed_from_epel_on_rhel(container):
    os_name, run = container
    installs = [c for c in run.commands if c.startswith("dnf install -y ") or " install --no-install" in c]
    supervisor = next(i for i, c in enumerate(installs) if "supervisor" in c.split())
    if os_name == "rocky9":
        assert installs.index("dnf install -y epel-release") < supervisor
    else:
        assert not [c for c in installs if "epel-release" in c]


def test_supervisord_chosen_explicitly_on_a_systemd_host(deploy):
    run = deploy({"aio": (("omero_database",), {"omero_service_manager": "supervisord"})},
                 os_name="ubuntu24.04")["aio"]
    assert "/etc/supervisor/conf.d/postgresql.conf" in run.uploads
    assert not [command for command in run.commands if "systemctl" in command]


def test_an_image_build_renders_what_a_container_sets(deploy):
    """omero_image_build: the programs and the site read what each container's start sets
    (deploys/container.py); supervisord gets the build's own values."""
    data = {"omero_image_build": True, "omero_nginx_listen": "8080", "omero_web_bind": "127.0.0.1:4080",
            "omero_web_workers": 3}
    run = deploy({"aio": (ALL_ROLES, data)}, os_name="debian12", pid1="bash")["aio"]
    programs = {service: run.uploads[f"/etc/supervisor/conf.d/{service}.conf"] for service in SERVICES}
    assert "--bind 127.0.0.1:%(ENV_OMERO_WEB_PORT)s --reuse-port --workers %(ENV_OMERO_WEB_WORKERS)s " \
        in programs["omero-web"]
    assert 'environment=HOME="%(ENV_OMERO_HOME_OMERO_WEB)s",OMERODIR="/opt/omero/web/OMERO.web"\n' \
        in programs["omero-web"]
    assert 'environment=HOME="/var/lib/omero-server",' in programs["omero-server"]  # the deploy's own
    assert "-c port=%(ENV_OMERO_DB_PORT)s -c unix_socket_directories=%(ENV_OMERO_PG_SOCKETS)s " \
        in programs["postgresql"]
    assert "/usr/sbin/nginx -c %(ENV_OMERO_NGINX_CONF)s -e stderr -g 'daemon off;'" in programs["nginx"]
    for service, program in programs.items():
        assert f"user=%(ENV_OMERO_RUN_AS_{service.upper().replace('-', '_')})s\n" in program
        assert "startretries=3\n" in program
    site = run.uploads["/etc/nginx/conf.d/omero-web.conf"]
    assert "    include /var/lib/omero/run/nginx-upstream.conf;\n" in site
    assert "    include /var/lib/omero/run/nginx-listen-default.conf;\n" in site
    assert "    listen " not in site and "4080" not in site
    assert run.uploads["/var/lib/omero/run/nginx-upstream.conf"] == "server 127.0.0.1:4080 fail_timeout=0;\n"
    started = [command for command in run.commands if "supervisord -c" in command]
    assert started and all(command.startswith("env OMERO_DB_PORT=5432 OMERO_WEB_PORT=4080 OMERO_WEB_WORKERS=3 ")
                           for command in started)
    assert " OMERO_RUN_AS_OMERO_SERVER=omero-server " in started[0]
    assert " OMERO_HOME_OMERO_WEB=/var/lib/omero-web " in started[0]
    assert started[0].endswith(" supervisord -c /etc/supervisor/supervisord.conf")


def test_a_host_renders_its_values(container):
    """Without omero_image_build, nothing is left for a container to set."""
    _, run = container
    assert not [path for path, text in run.uploads.items() if "%(ENV_" in str(text) or "/var/lib/omero/run" in path]
