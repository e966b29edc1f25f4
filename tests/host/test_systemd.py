"""All-in-one (omero_database + omero_web) on a booted systemd host, deployed over SSH as a
sudo user, checked as a sysadmin would: units enabled, active and ordered as systemd sees
them, the page through nginx, nothing listening where it should not, a second run that
changes nothing, a reboot and crashes recovered by systemd alone."""

import shlex
import signal
import subprocess
import time
from pathlib import Path

import psycopg2
import pytest
import requests

from ..docs_commands import DEPLOY_COMMAND, block
from .audit import assert_clean, audit, expected_for
from .checks import login_page, secret, stylesheet
from .testhosts import (
    CLEAN_ENV,
    EXTRA_CA_CERTIFICATES,
    ROOT,
    SUBNET,
    SystemdHost,
    deployed,
    hosts_with_changes,
    pyinfra,
    wait_for,
)

WEB_OMERODIR = "/opt/omero/web/OMERO.web"
POSTGRES = "postgresql@15-main.service"
UNITS = (POSTGRES, "omero-web.service", "nginx.service")


@pytest.fixture(scope="module")
def host(tmp_path_factory, secrets_dir):
    with deployed(SystemdHost("allinone", f"{SUBNET}.10"), ["omero_database", "omero_web"],
                  tmp_path_factory.mktemp("allinone"), secrets_dir) as deployed_host:
        yield deployed_host


@pytest.fixture(scope="module")
def url(host):
    return f"http://{host.address}"


def unit_property(host, unit: str, prop: str) -> str:
    return host.run(f"systemctl show --value -p {prop} {unit}").stdout.strip()


def test_units_enabled_and_active(host):
    for unit in UNITS:
        service = host.testinfra.service(unit)
        assert service.is_enabled and service.is_running, unit


def test_start_order_as_systemd_sees_it(host):
    # Read from systemd's loaded units, not from our files.
    assert "omero-web.service" in unit_property(host, "nginx.service", "After").split()
    assert POSTGRES in unit_property(host, "omero-web.service", "After").split()


def test_packages_users_and_modes(host):
    testinfra = host.testinfra
    for package in ("postgresql-15", "nginx", "ca-certificates"):
        assert testinfra.package(package).is_installed, package
    assert not testinfra.package("supervisor").is_installed
    user = testinfra.user("omero-web")
    assert user.exists and user.shell == "/usr/sbin/nologin"
    assert user.groups == ["omero-web"]  # not in the group that writes the binary repository
    config = testinfra.file("/opt/omero/web/config/01-omero-web.omero")
    assert (config.user, config.group, config.mode) == ("root", "omero-web", 0o640)
    venv = testinfra.file("/opt/omero/web/venv3")
    assert venv.user == "root" and not venv.mode & 0o022  # the service cannot change its code
    key = testinfra.file(f"{WEB_OMERODIR}/var/django_secret_key")
    assert (key.user, key.mode) == ("omero-web", 0o600)


def test_login_page_and_static_files_through_nginx(host, url):
    page = login_page(url)
    css = stylesheet(page)
    static = requests.get(f"{url}{css}", timeout=30)
    assert static.status_code == 200 and static.headers["Server"].startswith("nginx")
    # Byte for byte the file collected on disk: nginx serves it, not Django.
    assert static.content == host.read_bytes(f"{WEB_OMERODIR}/var{css.split('?')[0]}")


def test_nothing_listens_on_a_public_address_but_nginx(host):
    sockets = host.run("ss -Htlnp").stdout.splitlines()
    listening = {line.split()[3]: line for line in sockets}
    assert "127.0.0.1:5432" in listening and "127.0.0.1:4080" in listening
    for local, line in listening.items():
        address, _, port = local.rpartition(":")
        if address not in ("127.0.0.1", "[::1]"):
            assert port in ("22", "80") and ("nginx" in line or "sshd" in line), line


def test_database_login_as_the_omero_role(host, secrets_dir):
    password = secret(secrets_dir, "db-omero")
    login = (f"PGPASSWORD={password} psql -XAt -h 127.0.0.1 -U omero -d omero -c "
             "\"SELECT current_user, pg_encoding_to_char(encoding) FROM pg_database WHERE datname='omero'\"")
    assert host.run(login).stdout.strip() == "omero|UTF8"
    wrong = host.run("PGPASSWORD=wrong-password psql -XAt -h 127.0.0.1 -U omero -d omero -c 'SELECT 1'",
                     check=False)
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    with pytest.raises(psycopg2.OperationalError):  # and not reachable from outside
        psycopg2.connect(host=host.address, dbname="omero", user="omero", password=password,
                         connect_timeout=5)


def test_no_secret_in_files_or_output(host, secrets_dir):
    password = secret(secrets_dir, "db-omero")
    found = host.run(f"grep -rlF -- '{password}' /etc /opt /var/lib/omero-web /home", check=False)
    assert found.stdout == ""
    log = (ROOT / "artifacts" / f"deploy-{host.inventory.stem}.log").read_text()
    assert "Starting operation: Create the database role omero" in log
    assert password not in log


def test_lab_ca_certificates_trusted(host):
    bundle = host.run("cat /etc/ssl/certs/ca-certificates.crt").stdout
    for path in EXTRA_CA_CERTIFICATES:
        assert Path(path).read_text().splitlines()[1] in bundle


def test_second_run_changes_nothing(host):
    assert hosts_with_changes(host.inventory) == {}


def test_the_readmes_deploy_command(host, tmp_path):
    """README's deploy command as written, the test's inventory for its placeholder, on its
    first use (no venv yet: it makes its own); Enter pressed at pyinfra's prompt."""
    command = block("README.md", DEPLOY_COMMAND).splitlines()[0]
    command = command.replace("inventories/<site>.py", shlex.quote(str(host.inventory)))
    venv = tmp_path / "venv"
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, env={**CLEAN_ENV, "OMERO_PYINFRA_VENV": str(venv)},
                            input="\n", capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert (venv / "bin" / "pyinfra").is_file()
    assert hosts_with_changes(host.inventory) == {}


def test_drift_is_caught_and_repaired(host):
    """A unit disabled by hand; the web user in the shared group, as earlier deploys left it."""
    host.run("systemctl disable omero-web.service")
    host.run("groupadd -f --system omero && usermod -aG omero omero-web")
    changes = hosts_with_changes(host.inventory)
    assert "Run and enable omero-web" in changes
    assert "Take omero-web out of the group omero" in changes
    assert pyinfra(host.inventory).returncode == 0
    assert host.testinfra.service("omero-web.service").is_enabled
    assert host.testinfra.user("omero-web").groups == ["omero-web"]


def test_units_are_sandboxed(host):
    """systemd-analyze's exposure score (10 = unprotected); figures in the README."""
    for unit in ("omero-web.service",):
        report = host.run(f"systemd-analyze security --no-pager {unit}").stdout
        exposure = float(report.strip().splitlines()[-1].split()[-3])
        assert exposure < 5, report[-400:]


def test_crashed_services_come_back_within_10_seconds(host, url):
    def restarted(unit: str, killed: str) -> bool:
        return host.testinfra.service(unit).is_running and unit_property(host, unit, "MainPID") not in ("0", killed)

    for unit in (POSTGRES, "omero-web.service"):
        killed = unit_property(host, unit, "MainPID")
        host.run(f"kill -{signal.SIGKILL.value} {killed}")
        started = time.monotonic()
        wait_for(lambda unit=unit, killed=killed: restarted(unit, killed), f"{unit} to restart", 10)
        print(f"{unit} back in {time.monotonic() - started:.1f} s")
    wait_for(lambda: login_page(url), "the login page", 30)


def test_boot_brings_everything_back_in_order(host, url):
    started = time.monotonic()
    host.restart()
    host.wait_booted()
    wait_for(lambda: login_page(url), "the login page after boot", 120)
    print(f"boot to login page: {time.monotonic() - started:.1f} s")
    order = sorted(UNITS, key=lambda unit: int(unit_property(host, unit, "ActiveEnterTimestampMonotonic")))
    assert order == list(UNITS)


def test_login_page_renders_in_a_browser(host, url):
    playwright = pytest.importorskip("playwright.sync_api")
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    responses = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("response", lambda r: responses.append((r.url, r.status, r.headers.get("server", ""))))
            # Only the test host: the login page also asks GitHub for OMERO.insight's releases.
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url)
                       else route.abort())
            page.goto(f"{url}/webclient/login/", wait_until="networkidle")
            page.screenshot(path=str(artifacts / "login-page.png"))
            assert page.locator("form[action*='/webclient/login/']").count() == 1
            assert page.locator("input[name=username]").is_visible()
            assert page.locator("input[name=password]").is_visible()
            assert page.evaluate("document.styleSheets.length") > 0
        finally:
            browser.close()
    assets = [(asset, status, server) for asset, status, server in responses if "/static/" in asset]
    assert any(".css" in asset for asset, _, _ in assets) and any(".js" in asset for asset, _, _ in assets)
    assert all(status == 200 and server.startswith("nginx") for _, status, server in assets), assets


def test_broken_nginx_upstream_is_caught_and_repaired(host, url):
    """A site edited by hand (nginx sent to the wrong port) fails; a deploy repairs it."""
    site = "/etc/nginx/conf.d/omero-web.conf"
    good = host.read_bytes(site)
    host.run(f"sed -i 's/:4080/:4099/' {site} && systemctl restart nginx.service")
    with pytest.raises(requests.HTTPError):
        login_page(url)
    assert f"Write {site}" in hosts_with_changes(host.inventory)
    assert pyinfra(host.inventory).returncode == 0
    assert host.read_bytes(site) == good
    login_page(url)
    assert hosts_with_changes(host.inventory) == {}


def test_permission_audit_passes_and_finds_each_planted_fault(host, secrets_dir):
    """The audit (docs/security.md) finds nothing on the deployed host, then exactly the three
    faults planted: a 0644 file holding the database password, a unit a service account
    owns, an undeclared listener."""
    assert_clean(host, secrets_dir)
    expected = expected_for(host, secrets_dir)
    leaked, unit, port = "/opt/omero/web/leaked.conf", "/etc/systemd/system/omero-planted.service", 8765
    password = secret(secrets_dir, "db-omero")
    host.run(f"umask 022 && echo 'password = {password}' > {leaked}")
    host.run(f"printf '[Service]\\nExecStart=/bin/true\\n' > {unit} && chown omero-web {unit}")
    host.run(f"setsid -f runuser -u nobody -- sh -c 'echo $$ > /tmp/planted && exec python3 -m http.server "
             f"{port} --bind 0.0.0.0' >/dev/null 2>&1")
    try:
        wait_for(lambda: host.testinfra.socket(f"tcp://0.0.0.0:{port}").is_listening, "the planted listener", 30)
        findings = {finding.path: finding for finding in audit(host.run, expected)}
        assert set(findings) == {leaked, unit, f"tcp 0.0.0.0:{port}"}, findings
        assert findings[leaked].mode == 0o644 and "holds a secret value" in findings[leaked].why
        assert findings[unit].owner == "omero-web" and "root runs or reads it" in findings[unit].why
        assert findings[f"tcp 0.0.0.0:{port}"].owner == "nobody"
    finally:
        host.run(f"rm -f {leaked} {unit}; kill $(cat /tmp/planted) && rm /tmp/planted", check=False)
    assert audit(host.run, expected) == []
