"""OMERO.web over HTTPS with the lab's own certificate, and the web apps labs install, on a
booted systemd host deployed over SSH: checked from outside as a browser, a TLS scanner
and a sysadmin would, then changed (a new certificate, an app taken out) under load."""

import hashlib
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from ..certificates import CertificateAuthority
from .checks import curl as curl_as
from .checks import headers, status
from .testhosts import ROOT, SUBNET, SystemdHost, deploy, deployed, host_data, hosts_with_changes, write_inventory

NAME = "omero.test"
APPS = ["omero-figure", "omero-iviewer", "omero-parade", "omero-mapr"]
APP_MODULES = {"omero-figure": "omero_figure", "omero-iviewer": "omero_iviewer",
               "omero-parade": "omero_parade", "omero-mapr": "omero_mapr"}
APP_PATHS = {"omero-figure": "/figure/", "omero-iviewer": "/iviewer/", "omero-parade": "/parade/",
             "omero-mapr": "/mapr/keyvalue/"}  # mapr: the search this deploy registers
APP_STATIC = {"omero-figure": "omero_figure", "omero-iviewer": "omero_iviewer", "omero-parade": "omero_parade",
              "omero-mapr": "mapr"}
WEB_OMERODIR = "/opt/omero/web/OMERO.web"


def curl(host, path: str, *args: str, scheme: str = "https", name: str = NAME, ca=None):
    return curl_as(host, path, *args, name=name, scheme=scheme, ca=ca.path if ca else None)

STATIC = f"{WEB_OMERODIR}/var/static"
ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


def site_options(chain, key, apps) -> dict:
    return {"omero_nginx_server_name": NAME, "omero_nginx_tls_certificate": str(chain),
            "omero_nginx_tls_key": str(key), "omero_web_apps": apps}


@pytest.fixture(scope="module")
def site(tmp_path_factory, secrets_dir, ca):
    chain, key, _ = ca.issue("site", [NAME])
    with deployed(SystemdHost("https", f"{SUBNET}.12"), ["omero_web"], tmp_path_factory.mktemp("https"),
                  secrets_dir, **site_options(chain, key, APPS)) as host:
        yield host


def handshake(address: str, version: ssl.TLSVersion, ca, name: str = NAME, port: int = 443) -> str:
    """The protocol a client offering only ``version`` gets; the SSLError if refused. The
    client allows every cipher (security level 0), so only the server can refuse."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(ca.path))
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = version
    with socket.create_connection((address, port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            return tls.version()


@pytest.fixture(scope="module")
def old_protocol_server(tmp_path_factory, ca):
    """A server that does speak TLS 1.0 and 1.1: proof that our client can."""
    chain, key, _ = ca.issue("legacy", ["legacy.test"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.load_cert_chain(str(chain), str(key))
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                context.wrap_socket(connection, server_side=True).close()
            except (ssl.SSLError, OSError):
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")  # offered on purpose
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_refused(site, ca, old_protocol_server, version):
    assert handshake("127.0.0.1", version, ca, "legacy.test", old_protocol_server)  # the client can
    with pytest.raises(ssl.SSLError):
        handshake(site.address, version, ca)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_modern_tls_accepted_with_a_valid_certificate(site, ca, version):
    # check_hostname: the certificate chains to the lab's CA and names the site.
    assert handshake(site.address, version, ca) == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                                    ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]


def test_certificate_names_the_site(site, ca):
    context = ssl.create_default_context(cafile=str(ca.path))
    with socket.create_connection((site.address, 443), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=NAME) as tls:
            names = tls.getpeercert()["subjectAltName"]
    assert names == (("DNS", NAME),)


def test_http_redirects_to_https(site):
    result = curl(site, "/webclient/login/?url=x", scheme="http")
    assert status(result) == 301
    assert headers(result)["location"] == [f"https://{NAME}/webclient/login/?url=x"]


def test_login_page_hardened(site, ca):
    result = curl(site, "/webclient/login/", ca=ca)
    assert status(result) == 200, result.stdout + result.stderr
    found = headers(result)
    assert found["strict-transport-security"] == ["max-age=63072000"]
    assert found["x-content-type-options"] == ["nosniff"]
    assert found["referrer-policy"] == ["strict-origin-when-cross-origin"]
    assert found["content-security-policy"] == ["frame-ancestors 'self'"]
    assert found["x-frame-options"] == ["SAMEORIGIN"]  # OMERO.web's own
    assert found["server"] == ["nginx"]  # no version
    cookies = found["set-cookie"]
    assert any(cookie.startswith("csrftoken=") for cookie in cookies)
    assert all("; Secure" in cookie or "; secure" in cookie for cookie in cookies), cookies


def test_static_files_hardened_and_from_nginx(site, ca):
    page = subprocess.run(["curl", "-sS", "--resolve", f"{NAME}:443:{site.address}", "--cacert", str(ca.path),
                           f"https://{NAME}/webclient/login/"], capture_output=True, text=True).stdout
    css = re.findall(r'href="(/static/[^"]+\.css)', page)[0]
    found = headers(curl(site, css, ca=ca))
    assert found["strict-transport-security"] and found["x-content-type-options"] == ["nosniff"]
    assert "x-frame-options" not in found  # nginx, not Django, answered


def test_unknown_host_names_refused(site, ca):
    # HTTP: the connection is closed without an answer; HTTPS: no certificate is shown.
    result = curl(site, "/webclient/login/", scheme="http", name="other.test")
    assert result.returncode == 52, result  # "Empty reply from server"
    with pytest.raises(ssl.SSLError):
        handshake(site.address, ssl.TLSVersion.TLSv1_3, ca, name="other.test")
    # By address, with no name: refused too.
    direct = subprocess.run(["curl", "-sSk", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}",
                             f"https://{site.address}/webclient/login/"], capture_output=True, text=True)
    assert direct.returncode != 0


def _over_the_sites_tls(address: str, ca, request: bytes) -> bytes:
    """``request`` sent over a TLS connection made (SNI, certificate) for the site's name."""
    context = ssl.create_default_context(cafile=str(ca.path))
    with socket.create_connection((address, 443), timeout=20) as raw:
        with context.wrap_socket(raw, server_hostname=NAME) as tls:
            tls.sendall(request)
            answer = bytearray()
            while chunk := tls.recv(1 << 16):
                answer += chunk
    return bytes(answer)


def test_another_host_on_the_sites_tls_connection_gets_nothing(site, ca):
    """The TLS connection is the site's, the request names another Host: the catch-all
    server closes it (444) instead of showing nginx's own page and version."""
    for host_header in ("other.test", "localhost", site.address):
        answer = _over_the_sites_tls(site.address, ca, f"GET / HTTP/1.1\r\nHost: {host_header}\r\n"
                                                       "Connection: close\r\n\r\n".encode())
        assert answer == b"", (host_header, answer[:200])
    # The site's own name on the same kind of connection is answered, without nginx's version.
    answer = _over_the_sites_tls(site.address, ca, f"GET /nonexistent-page HTTP/1.1\r\nHost: {NAME}\r\n"
                                                   "Connection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 ") and b"nginx/" not in answer


def test_testssl_finds_nothing_high_or_critical(site, ca):
    if not shutil.which("testssl"):
        pytest.skip("testssl (Debian's testssl.sh) is not installed; scripts/test installs it")
    ARTIFACTS.mkdir(exist_ok=True)
    report = ARTIFACTS / "testssl-https.json"
    report.unlink(missing_ok=True)
    result = subprocess.run(
        ["testssl", "--quiet", "--color", "0", "--warnings", "off", "--ip", site.address, "--add-ca", str(ca.path),
         "--jsonfile", str(report), f"https://{NAME}/"], capture_output=True, text=True, timeout=900)
    (ARTIFACTS / "testssl-https.txt").write_text(result.stdout)
    findings = json.loads(report.read_text())
    offered = {finding["id"]: finding["finding"] for finding in findings if finding["id"].startswith("TLS1")}
    assert offered == {"TLS1": "not offered", "TLS1_1": "not offered", "TLS1_2": "offered",
                       "TLS1_3": "offered with final"}
    bad = [f"{finding['id']}: {finding['finding']}" for finding in findings
           if finding["severity"] in ("HIGH", "CRITICAL")]
    assert not bad, bad


def test_login_page_renders_over_https_in_a_browser(site, ca, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    if not shutil.which("certutil"):
        pytest.skip("certutil (libnss3-tools) is not installed; scripts/test installs it")
    # Chromium trusts what its NSS database holds: the lab's CA, as a lab's desktops would.
    nssdb = tmp_path / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{nssdb}", "-n", "lab CA", "-t", "C,,", "-i", str(ca.path)],
                   check=True)
    ARTIFACTS.mkdir(exist_ok=True)
    responses, failures = [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", env={"HOME": str(tmp_path)}, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", f"--host-resolver-rules=MAP {NAME} {site.address}"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("response", lambda r: responses.append((r.url, r.status, r.headers.get("server", ""))))
            # Only the site: the login page also asks GitHub for OMERO.insight's releases.
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(f"https://{NAME}/")
                       else route.abort())
            page.on("requestfailed", lambda r: failures.append((r.url, r.failure))
                    if r.url.startswith(f"https://{NAME}/") else None)
            page.goto(f"https://{NAME}/webclient/login/", wait_until="networkidle")
            page.screenshot(path=str(ARTIFACTS / "login-page-https.png"))
            assert page.locator("input[name=username]").is_visible()
            assert page.evaluate("document.styleSheets.length") > 0
            assert page.evaluate("window.isSecureContext")
        finally:
            browser.close()
    assert not failures, failures
    assets = [(url, status, server) for url, status, server in responses if "/static/" in url]
    assert any(".css" in url for url, _, _ in assets) and any(".js" in url for url, _, _ in assets)
    assert all(url.startswith(f"https://{NAME}/") and status == 200 and server == "nginx"
               for url, status, server in assets), assets


def loaded_config(host, key: str) -> str:
    """A setting as OMERO.web has it loaded (config.xml), not as our file says."""
    return host.run(f"runuser -u omero-web -- env OMERODIR={WEB_OMERODIR} "
                    f"/opt/omero/web/venv3/bin/omero config get {key}").stdout.strip()


def loaded_list(host, key: str) -> list:
    return json.loads(loaded_config(host, key))


@pytest.mark.parametrize("app", APPS)
def test_web_app_answers_through_nginx(site, ca, app):
    result = curl(site, APP_PATHS[app], ca=ca)
    # Not 404: the app is mounted, and sends a visitor without a session to log in.
    assert status(result) == 302, result.stdout
    assert headers(result)["location"][0].startswith("/webclient/login/")
    assert APP_MODULES[app] in loaded_list(site, "omero.web.apps")
    # Its static files are collected and served by nginx.
    static = site.run(f"cd {STATIC} && find {APP_STATIC[app]} -name '*.js' -size +1k | head -1").stdout.strip()
    assert static, f"no static files of {app} collected"
    served = curl(site, f"/static/{static}", ca=ca)
    assert status(served) == 200 and "x-frame-options" not in headers(served)


def test_web_apps_registered_as_their_docs_say(site):
    assert loaded_config(site, "omero.web.viewer.view") == "omero_iviewer.views.index"
    open_with = [entry[0] for entry in loaded_list(site, "omero.web.open_with")]
    assert {"omero_figure", "omero_iviewer"} <= set(open_with)
    assert "Image viewer" in open_with  # OMERO.web's own entry kept
    assert ["Parade", "omero_parade/init.js.html", "omero_parade"] in loaded_list(
        site, "omero.web.ui.center_plugins")
    links = [link[0] for link in loaded_list(site, "omero.web.ui.top_links")]
    assert {"Data", "Figure", "Key-Value"} <= set(links)


def test_second_run_changes_nothing(site):
    assert hosts_with_changes(site.inventory) == {}


def _slow_download(address: str, path: str, ca, done: threading.Event, result: dict) -> None:
    """Read ``path`` a trickle at a time until ``done``, then the rest: the request is in
    flight all along (a small receive window keeps nginx from handing it all to the kernel)."""
    context = ssl.create_default_context(cafile=str(ca.path))
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(60)
    raw.connect((address, 443))
    with context.wrap_socket(raw, server_hostname=NAME) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n".encode())
        data = bytearray()
        while chunk := tls.recv(1 << 16 if done.is_set() else 1024):
            data += chunk
            if not done.is_set():
                time.sleep(0.2)
        result["response"] = bytes(data)


def test_new_certificate_and_fewer_apps_without_dropping_a_download(site, ca, secrets_dir):
    """The site gets a new certificate and loses an app while a client is downloading."""
    probe = f"{STATIC}/reload-probe.bin"
    site.run(f"head -c 33554432 /dev/urandom > {probe} && chmod 644 {probe}")
    expected = hashlib.sha256(site.read_bytes(probe)).hexdigest()
    chain, key, renewed = ca.issue("renewed", [NAME])
    write_inventory(site.inventory, {"omero_web": [site]}, {site.name: host_data(
        site, secrets_dir, **site_options(chain, key, [app for app in APPS if app != "omero-parade"]))})
    done, result = threading.Event(), {}
    reader = threading.Thread(target=_slow_download, args=(site.address, "/static/reload-probe.bin", ca, done, result))
    reader.start()
    try:
        time.sleep(2)
        deploy(site.inventory, site)
    finally:
        done.set()
        reader.join(120)
    head, _, body = result["response"].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and hashlib.sha256(body).hexdigest() == expected
    # New connections get the new certificate ...
    context = ssl.create_default_context(cafile=str(ca.path))
    with socket.create_connection((site.address, 443), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=NAME) as tls:
            served = tls.getpeercert()
    assert int(served["serialNumber"], 16) == renewed.serial_number
    # ... and OMERO.parade is gone: package, registration, static files, URL.
    assert "omero_parade" not in loaded_list(site, "omero.web.apps")
    assert not site.testinfra.file(f"{STATIC}/omero_parade").exists
    assert "omero-parade" not in site.run("/opt/omero/web/venv3/bin/pip list --format=freeze").stdout
    assert status(curl(site, "/parade/", ca=ca)) == 404
    assert hosts_with_changes(site.inventory) == {}
