"""A fresh Debian 12 host in omero_database + omero_web, deployed for real and checked as a
sysadmin would: packages, users, modes, supervision, sockets, nginx, the login page, the
database login, idempotency, recovery, and a real browser."""

import re
import signal
import time
from pathlib import Path

import psycopg2
import pytest
import requests

from .testhosts import EXTRA_CA_CERTIFICATES, ROOT, hosts_with_changes, pyinfra

WEB_OMERODIR = "/opt/omero/web/OMERO.web"


def login_page(address: str) -> requests.Response:
    response = requests.get(f"http://{address}/webclient/login/", timeout=30)
    response.raise_for_status()
    assert "OMERO.web - Login" in response.text
    assert response.headers["Server"].startswith("nginx")
    return response


def db_password(secrets_dir: Path) -> str:
    (secret,) = secrets_dir.glob("*-db-omero")
    return secret.read_text().strip()


def test_packages_installed(allinone):
    for package in ("postgresql-15", "nginx", "supervisor", "ca-certificates"):
        assert allinone.testinfra.package(package).is_installed, package


def test_web_user_and_directories(allinone):
    host = allinone.testinfra
    user = host.user("omero-web")
    assert user.exists and "omero" in user.groups and user.shell == "/usr/sbin/nologin"
    config_dir = host.file("/opt/omero/web/config")
    assert (config_dir.user, config_dir.group, config_dir.mode) == ("root", "omero-web", 0o750)
    config = host.file("/opt/omero/web/config/01-omero-web.omero")
    assert (config.user, config.group, config.mode) == ("root", "omero-web", 0o640)
    assert config.contains("omero.web.application_server.port 4080")
    venv = host.file("/opt/omero/web/venv3")
    assert venv.user == "root" and not venv.mode & 0o022  # the service user cannot change its code
    assert host.file(f"{WEB_OMERODIR}/var/django_secret_key").mode == 0o600
    assert host.file(f"{WEB_OMERODIR}/var/django_secret_key").user == "omero-web"


def test_no_secret_is_world_readable(allinone, secrets_dir):
    hba = allinone.testinfra.file("/etc/postgresql/15/main/pg_hba.conf")
    assert hba.user == "postgres" and hba.mode == 0o640
    for secret in secrets_dir.iterdir():
        assert secret.stat().st_mode & 0o077 == 0, secret
    # The controller's copy is the only one of the database password on a web+db host.
    password = db_password(secrets_dir)
    found = allinone.run(f"grep -rlF -- '{password}' /etc /opt /var/lib/omero-web", check=False)
    assert found.stdout == ""


def test_lab_ca_certificates_trusted_and_used_by_pip(allinone):
    bundle = allinone.testinfra.file("/etc/ssl/certs/ca-certificates.crt").content_string
    installed = allinone.testinfra.file("/usr/local/share/ca-certificates").listdir()
    for path in EXTRA_CA_CERTIFICATES:
        assert f"omero-extra-{Path(path).stem}.crt" in installed
        # The certificate's first line of base64 is in the system bundle ...
        assert Path(path).read_text().splitlines()[1] in bundle
    # ... which the venv's pip is pointed at (pip's own bundle lacks the lab's CAs).
    pip_conf = allinone.testinfra.file("/opt/omero/web/venv3/pip.conf")
    assert pip_conf.contains("^cert = /etc/ssl/certs/ca-certificates.crt$")
    assert (pip_conf.user, pip_conf.mode) == ("root", 0o644)


def test_deploy_output_holds_no_secret(allinone, secrets_dir):
    log = (ROOT / "artifacts" / f"deploy-{allinone.inventory.stem}.log").read_text()
    assert "Starting operation: Create the database role omero" in log
    assert db_password(secrets_dir) not in log


def test_services_run_under_supervision(allinone):
    for program in ("postgresql", "omero-web", "nginx"):
        assert allinone.testinfra.supervisor(program).is_running, program


def test_listening_only_where_needed(allinone):
    host = allinone.testinfra
    assert host.socket("tcp://127.0.0.1:5432").is_listening
    assert host.socket(f"tcp://{allinone.address}:4080").is_listening
    assert host.socket(f"tcp://{allinone.address}:80").is_listening
    for port in (5432, 4080):
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening, port
        assert not host.socket(f"tcp://:::{port}").is_listening, port


def test_nginx_configuration_is_valid(allinone):
    assert allinone.testinfra.run("nginx -t").rc == 0
    assert not allinone.testinfra.file("/etc/nginx/sites-enabled/default").exists


def test_login_page_and_static_files_through_nginx(allinone):
    page = login_page(allinone.address)
    stylesheets = re.findall(r'href="(/static/[^"]+\.css)', page.text)
    assert stylesheets
    static = requests.get(f"http://{allinone.address}{stylesheets[0]}", timeout=30)
    assert static.status_code == 200 and static.headers["Server"].startswith("nginx")
    # Byte for byte the file collected on disk: nginx serves it, not Django.
    on_disk = allinone.root / WEB_OMERODIR.lstrip("/") / "var" / stylesheets[0].split("?")[0][1:]
    assert static.content == on_disk.read_bytes()
    assert requests.get(f"http://{allinone.address}:4080{stylesheets[0]}", timeout=30).status_code == 404


def test_database_login_as_the_omero_role(allinone, secrets_dir):
    with psycopg2.connect(host="127.0.0.1", dbname="omero", user="omero",
                          password=db_password(secrets_dir)) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user, pg_encoding_to_char(encoding), "
                           "pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'omero'")
            assert cursor.fetchone() == ("omero", "UTF8", "omero")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(host="127.0.0.1", dbname="omero", user="omero", password="wrong-password")
    verifier = allinone.run(
        "su postgres -c \"psql -XAtc \\\"SELECT rolpassword FROM pg_authid WHERE rolname='omero'\\\"\"")
    assert verifier.stdout.startswith("SCRAM-SHA-256$")


def test_second_run_changes_nothing(allinone):
    assert hosts_with_changes(allinone.inventory) == {}


def test_killed_web_worker_comes_back(allinone):
    supervisorctl = "supervisorctl -c /etc/supervisor/supervisord.conf"
    old_pid = int(allinone.run(f"{supervisorctl} pid omero-web").stdout)
    allinone.run(f"kill -{signal.SIGKILL.value} {old_pid}")
    deadline = time.time() + 60
    while time.time() < deadline:
        status = allinone.run(f"{supervisorctl} status omero-web", check=False).stdout
        if "RUNNING" in status and f"pid {old_pid}," not in status:
            break
        time.sleep(1)
    else:
        pytest.fail(f"omero-web did not come back: {status}")
    deadline = time.time() + 60
    while True:
        try:
            login_page(allinone.address)
            break
        except (requests.RequestException, AssertionError):
            if time.time() > deadline:
                raise
            time.sleep(1)
    # Served by the new master's workers, not only by orphans of the killed one.
    time.sleep(5)
    login_page(allinone.address)
    assert f"pid {old_pid}," not in allinone.run(f"{supervisorctl} status omero-web").stdout


def test_login_page_renders_in_a_browser(allinone):
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
            page.goto(f"http://{allinone.address}/webclient/login/", wait_until="networkidle")
            page.screenshot(path=str(artifacts / "login-page.png"))
            assert page.locator("form[action*='/webclient/login/']").count() == 1
            assert page.locator("input[name=username]").is_visible()
            assert page.locator("input[name=password]").is_visible()
            # The stylesheet really applied: the login box is laid out, not raw HTML.
            assert page.evaluate("document.styleSheets.length") > 0
            loaded = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        finally:
            browser.close()
    assets = [(url, status, server) for url, status, server in responses if "/static/" in url]
    assert any(url.endswith(".css") or ".css?" in url for url, _, _ in assets)
    assert any(url.endswith(".js") or ".js?" in url for url, _, _ in assets)
    assert all(status == 200 and server.startswith("nginx") for _, status, server in assets), assets
    assert any("/static/" in name for name in loaded)


def test_broken_nginx_upstream_is_caught_and_repaired(allinone):
    """A deploy gone wrong (nginx sent to the wrong port) fails the checks; a deploy repairs it."""
    site = allinone.root / "etc/nginx/conf.d/omero-web.conf"
    good = site.read_text()
    site.write_text(good.replace(":4080", ":4099"))
    allinone.run("supervisorctl -c /etc/supervisor/supervisord.conf restart nginx")
    with pytest.raises(requests.HTTPError):
        login_page(allinone.address)
    assert "Write /etc/nginx/conf.d/omero-web.conf" in hosts_with_changes(allinone.inventory)
    result = pyinfra(allinone.inventory)
    assert result.returncode == 0, result.stdout[-3000:]
    assert site.read_text() == good
    login_page(allinone.address)
    assert hosts_with_changes(allinone.inventory) == {}
