"""The analysis environment on a booted systemd host deployed over SSH (omero_web +
omero_analysis, HTTPS with a self-signed certificate): a lab member logs in to JupyterHub
through nginx with the password of their Unix account, starts their server, and a kernel
imports omero-py and ezomero and converts a PNG folder with the data tools; someone not in
the group is refused; a second deploy changes nothing."""

import json
import re
import secrets
import ssl
import time
import uuid
from urllib.parse import urlencode

import pytest
import requests
import websocket

from deploys.defaults import DEFAULTS

from .audit import KnownFindings, Listener, assert_clean
from .testhosts import ROOT, SUBNET, SystemdHost, deployed, hosts_with_changes

PATH = "/jupyter/"
GROUP = "jupyterhub-users"
MEMBER, OUTSIDER = "analyst", "outsider"
CERTIFICATE = "/etc/nginx/omero-tls/site.crt"

# Run in the member's kernel: the libraries import, and omero-png2tiff (the users' venv on
# PATH) turns a folder of PNG planes made here into an OME-TIFF holding the same planes.
KERNEL_CODE = r"""
import getpass, hashlib, json, os, pathlib, subprocess
import imageio.v3 as iio, numpy as np, tifffile
import omero.gateway, ezomero

position = pathlib.Path.home() / "pngs" / "pos01"
position.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(7)
written = []
for t in range(2):
    for channel in ("DAPI", "GFP"):
        for z in range(2):
            plane = rng.integers(0, 65535, (24, 40), dtype=np.uint16, endpoint=True)
            iio.imwrite(position / f"img_{t:09d}_{channel}_{z:03d}.png", plane)
            written.append(hashlib.sha256(plane.tobytes()).hexdigest())
output = pathlib.Path.home() / "ome-tiff"
run = subprocess.run(["omero-png2tiff", str(position), str(output)], capture_output=True, text=True)
tiffs = sorted(str(path.relative_to(output)) for path in output.rglob("*.ome.tif"))
result = {"returncode": run.returncode, "stderr": run.stderr[-3000:], "tiffs": tiffs,
          "user": getpass.getuser(), "omero_host": os.environ.get("OMERO_HOST"),
          "omero_port": os.environ.get("OMERO_PORT"), "gateway": hasattr(omero.gateway, "BlitzGateway"),
          "connect": callable(ezomero.connect)}
if tiffs:
    with tifffile.TiffFile(output / tiffs[0]) as tiff:
        pixels = tiff.series[0].asarray()
        result.update(ome=tiff.is_ome, shape=list(pixels.shape),
                      same_planes=sorted(written) == sorted(
                          hashlib.sha256(plane.tobytes()).hexdigest() for plane in pixels.reshape(-1, 24, 40)))
print("RESULT " + json.dumps(result))
"""


@pytest.fixture(scope="module")
def analysis(tmp_path_factory, secrets_dir):
    with deployed(SystemdHost("analysis", f"{SUBNET}.120"), ["omero_web", "omero_analysis"],
                  tmp_path_factory.mktemp("analysis"), secrets_dir, verbosity=("-vv", "--debug"),
                  omero_nginx_tls="self-signed") as host:
        yield host


@pytest.fixture(scope="module")
def trust(analysis, tmp_path_factory):
    """The host's self-signed certificate: all a lab member's client needs to trust the site."""
    path = tmp_path_factory.mktemp("trust") / "site.crt"
    path.write_bytes(analysis.read_bytes(CERTIFICATE))
    return path


@pytest.fixture(scope="module")
def accounts(analysis):
    """Two Unix accounts with passwords, as a lab's administrator makes them; only the first
    is added to the group."""
    passwords = {}
    for user in (MEMBER, OUTSIDER):
        passwords[user] = secrets.token_urlsafe(12)
        analysis.run(f"useradd --create-home --shell /bin/bash {user} && echo '{user}:{passwords[user]}' | chpasswd")
    analysis.run(f"usermod -aG {GROUP} {MEMBER}")
    return passwords


def hub_url(host) -> str:
    return f"https://{host.address}{PATH.rstrip('/')}"


def log_in(host, trust, user: str, password: str) -> tuple[requests.Session, requests.Response]:
    """The hub's login form, filled in as a browser would: its _xsrf token and cookies."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the site's certificate
    session.verify = str(trust)
    page = session.get(f"{hub_url(host)}/hub/login", timeout=30)
    page.raise_for_status()
    token = re.search(r'name="_xsrf"\s+value="([^"]+)"', page.text).group(1)
    answer = session.post(f"{hub_url(host)}/hub/login", timeout=60, allow_redirects=False,
                          data={"username": user, "password": password, "_xsrf": token})
    return session, answer


def test_hub_answers_through_nginx_over_https(analysis, trust):
    page = requests.get(f"{hub_url(analysis)}/hub/login", verify=str(trust), timeout=30)
    assert page.status_code == 200 and "JupyterHub" in page.text
    assert page.headers["strict-transport-security"] == "max-age=63072000"
    # The path typed without its closing slash: nginx adds it.
    bare = requests.get(f"{hub_url(analysis)}", verify=str(trust), timeout=30, allow_redirects=False)
    assert (bare.status_code, bare.headers["location"]) == (301, f"https://{analysis.address}{PATH}")
    # The proxy and the hub listen on the host's loopback only.
    listening = analysis.run("ss -Htln").stdout
    for port in (8000, 8001, 8002):
        assert re.search(rf"127\.0\.0\.1:{port}\b", listening)
        assert not re.search(rf"(\*|0\.0\.0\.0|\[::\]):{port}\b", listening)


def test_hub_runs_under_systemd_with_secrets_of_its_own(analysis):
    service = analysis.testinfra.service("omero-jupyterhub")
    assert service.is_running and service.is_enabled
    # Made on the host, never shown: not even in the deploy's most verbose output.
    log = (ROOT / "artifacts" / "deploy-analysis.log").read_text()
    assert "Starting operation: Make JupyterHub's cookie secret (on the host)" in log
    for secret in ("/var/lib/omero-jupyterhub/cookie_secret", "/var/lib/omero-jupyterhub/proxy_auth_token"):
        found = analysis.testinfra.file(secret)
        assert (found.user, found.group, found.mode, found.size) == ("root", "root", 0o600, 65)
        assert analysis.run(f"cat {secret}").stdout.strip() not in log


def test_member_not_in_group_refused(analysis, trust, accounts):
    session, answer = log_in(analysis, trust, OUTSIDER, accounts[OUTSIDER])
    assert answer.status_code == 403, (answer.status_code, answer.headers.get("location"))
    assert session.get(f"{hub_url(analysis)}/hub/home", timeout=30, allow_redirects=False).status_code == 302


def test_wrong_password_refused(analysis, trust, accounts):
    _, answer = log_in(analysis, trust, MEMBER, accounts[MEMBER] + "x")
    assert answer.status_code == 403


def open_lab(session, user_url: str, timeout: float = 300) -> None:
    """JupyterLab's page, once the user's server is up (the hub shows its progress until
    then); it sets the server's _xsrf cookie, which API requests then send back."""
    deadline = time.monotonic() + timeout
    while True:
        lab = session.get(f"{user_url}/lab", timeout=60)
        if lab.status_code == 200 and lab.url == f"{user_url}/lab" and "JupyterLab" in lab.text:
            return
        assert time.monotonic() < deadline, f"the server did not start: {lab.status_code} {lab.text[-500:]}"
        time.sleep(2)


def execute(session, user_url: str, trust, kernel: str, code: str, timeout: float = 240) -> str:
    """``code`` run in ``kernel`` over its websocket, as JupyterLab sends it; its output."""
    xsrf = session.cookies.get("_xsrf", path=f"{PATH}user/{MEMBER}/")
    session_id = uuid.uuid4().hex
    query = urlencode({"session_id": session_id, "_xsrf": xsrf})
    url = f"{user_url.replace('https://', 'wss://')}/api/kernels/{kernel}/channels?{query}"
    cookies = "; ".join(f"{cookie.name}={cookie.value}" for cookie in session.cookies)
    channel = websocket.create_connection(url, header=[f"Cookie: {cookies}"], timeout=timeout,
                                          sslopt={"ca_certs": str(trust), "cert_reqs": ssl.CERT_REQUIRED})
    try:
        msg_id = uuid.uuid4().hex
        channel.send(json.dumps({
            "header": {"msg_id": msg_id, "username": MEMBER, "session": session_id, "date": "",
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        output, replied, idle = [], False, False
        while not (replied and idle):
            message = json.loads(channel.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                output.append(content["text"])
            elif kind == "error":
                raise AssertionError("the kernel failed:\n" + "\n".join(content["traceback"]))
            elif kind == "execute_reply":
                replied = True
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        return "".join(output)
    finally:
        channel.close()


def test_member_logs_in_spawns_and_converts_pngs_in_a_kernel(analysis, trust, accounts):
    session, answer = log_in(analysis, trust, MEMBER, accounts[MEMBER])
    assert answer.status_code == 302, answer.text[-500:]
    # Spawned by the hub, as the "Start My Server" button does.
    session.get(f"{hub_url(analysis)}/hub/spawn", timeout=120)
    user_url = f"{hub_url(analysis)}/user/{MEMBER}"
    open_lab(session, user_url)
    xsrf = session.cookies.get("_xsrf", path=f"{PATH}user/{MEMBER}/")
    started = session.post(f"{user_url}/api/kernels", json={"name": "python3"}, timeout=120,
                           headers={"X-XSRFToken": xsrf})
    assert started.status_code == 201, started.text
    output = execute(session, user_url, trust, started.json()["id"], KERNEL_CODE)
    result = json.loads(output.split("RESULT ", 1)[1])
    assert result["returncode"] == 0, result["stderr"]
    assert result["user"] == MEMBER
    assert (result["omero_host"], result["omero_port"]) == ("localhost", "4064")
    assert result["gateway"] and result["connect"]
    assert len(result["tiffs"]) == 1 and result["ome"]
    assert sorted(result["shape"]) == [2, 2, 2, 24, 40] and result["same_planes"]
    # The files are the member's own, in their home.
    owner = analysis.run(f"stat -c %U /home/{MEMBER}/ome-tiff/{result['tiffs'][0]}").stdout.strip()
    assert owner == MEMBER


def test_ezomero_connect_needs_an_omero_server():
    pytest.skip("a real ezomero.connect() needs a running OMERO.server, which this test host has not "
                "(no OMERO.server artifact here); OMERO_HOST/OMERO_PORT are checked in the kernel instead")


def test_second_run_changes_nothing(analysis):
    assert hosts_with_changes(analysis.inventory) == {}


@pytest.mark.xfail(strict=True, raises=KnownFindings, reason=(
    "for the hub's branch (deploys/analysis.py): configurable-http-proxy's node_modules keep the "
    "owners npm's tarballs record (uid 501, and uid 1000: the first lab account), and root's hub runs it"))
def test_permission_audit(analysis, secrets_dir):
    # The member's single-user server, still running, listens on 127.0.0.1 (a port the hub picks).
    assert_clean(analysis, secrets_dir, listeners=(Listener(None, "127.0.0.1", owner=MEMBER),),
                 known=(f"/opt/omero/analysis/proxy-{DEFAULTS['omero_analysis_proxy_version']}/node_modules",))
