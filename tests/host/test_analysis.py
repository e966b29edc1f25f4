"""The analysis environment on a booted systemd host deployed over SSH (omero_database +
omero_web + omero_analysis, HTTPS with a self-signed certificate): JupyterHub answers on its
own name only, nothing of it on OMERO.web's; a lab member logs in through nginx with the
password of their Unix account, their server runs in a systemd unit of its own with the
per-user limits, and a kernel imports omero-py and ezomero and converts a PNG folder with the
data tools; neither from that kernel nor from a plain login can the member read any secret
of OMERO's or the hub's; someone not in the group is refused; a second deploy changes
nothing."""

import json
import re
import secrets
import shlex
import socket
import ssl
import time
import uuid
from urllib.parse import urlencode

import pytest
import requests
import websocket

from deploys.secrets import generated
from omero_image.base import run

from ..docs_commands import block
from .audit import Listener, assert_clean
from .testhosts import ADMIN, PODMAN_ENV, ROOT, SUBNET, SystemdHost, deployed, hosts_with_changes

HOST_NAME, HOST_ADDRESS = "analysis", f"{SUBNET}.120"
WEB_NAME, HUB_NAME = "omero.analysis.test", "jupyter.analysis.test"
GROUP = "jupyterhub-users"
MEMBER, OUTSIDER = "analyst", "outsider"
UNIT = f"jupyter-{MEMBER}-singleuser.service"
CERTIFICATE = "/etc/nginx/omero-tls/site.crt"
# Set as OMERO.web's mail password: a secret a lab member must not read anywhere.
MAIL_PASSWORD = secrets.token_urlsafe(18)
# Planted world-readable by the test: the walks must find it (they can find what is there).
CANARY, CANARY_PATH = secrets.token_urlsafe(18), "/srv/omero-walk-canary"

# Every file the running user can read, but /proc, /sys and /dev and files over 4 MB, searched
# for each secret; prints how many were read and where each secret was found.
WALK = r"""
import json, os, sys
wanted = {label: value.encode() for label, value in json.loads(SECRETS).items()}
read, found = 0, {}
for top, directories, names in os.walk("/", onerror=lambda error: None):
    if top == "/":
        directories[:] = [d for d in directories if d not in ("proc", "sys", "dev")]
    for name in names:
        path = os.path.join(top, name)
        try:
            if not os.path.isfile(path) or os.path.islink(path) or os.path.getsize(path) > 4 << 20:
                continue
            with open(path, "rb") as handle:
                content = handle.read()
        except OSError:
            continue
        read += 1
        for label, value in wanted.items():
            if value in content:
                found.setdefault(label, []).append(path)
print("WALK " + json.dumps({"read": read, "found": found}))
"""

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
    with deployed(SystemdHost(HOST_NAME, HOST_ADDRESS), ["omero_database", "omero_web", "omero_analysis"],
                  tmp_path_factory.mktemp("analysis"), secrets_dir, verbosity=("-vv", "--debug"),
                  omero_nginx_tls="self-signed", omero_nginx_server_name=WEB_NAME,
                  omero_analysis_server_name=HUB_NAME,
                  omero_web_config={"omero.web.email_host_password": MAIL_PASSWORD}) as host:
        yield host


@pytest.fixture(scope="module", autouse=True)
def names(analysis):
    """The sites' names lead to the test host, as the lab's DNS would make them (for
    requests and websockets alike: the TLS name and Host header are the names)."""
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        return real(analysis.address if host in (WEB_NAME, HUB_NAME) else host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", resolve)
        yield


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


HUB_URL = f"https://{HUB_NAME}"


def get(url: str, **kwargs) -> requests.Response:
    """A request as a browser makes it: straight to the site, never through a proxy of the
    environment (nor its CA bundle in place of the site's certificate)."""
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, timeout=60, **kwargs)


def log_in(trust, user: str, password: str) -> tuple[requests.Session, requests.Response]:
    """The hub's login form, filled in as a browser would: its _xsrf token and cookies."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the site's certificate
    session.verify = str(trust)
    page = session.get(f"{HUB_URL}/hub/login", timeout=30)
    page.raise_for_status()
    token = re.search(r'name="_xsrf"\s+value="([^"]+)"', page.text).group(1)
    answer = session.post(f"{HUB_URL}/hub/login", timeout=60, allow_redirects=False,
                          data={"username": user, "password": password, "_xsrf": token})
    return session, answer


def test_hub_answers_on_its_own_name_over_https(analysis, trust):
    page = get(f"{HUB_URL}/hub/login", verify=str(trust))
    assert page.status_code == 200 and "JupyterHub" in page.text
    assert page.headers["strict-transport-security"] == "max-age=63072000"
    assert page.headers["server"] == "nginx"  # server_tokens off
    # Plain HTTP on its name only redirects to HTTPS.
    plain = get(f"http://{HUB_NAME}/hub/login", allow_redirects=False)
    assert (plain.status_code, plain.headers["location"]) == (301, f"{HUB_URL}/hub/login")
    # The proxy and the hub listen on the host's loopback only.
    listening = analysis.run("ss -Htln").stdout
    for port in (8000, 8001, 8002):
        assert re.search(rf"127\.0\.0\.1:{port}\b", listening)
        assert not re.search(rf"(\*|0\.0\.0\.0|\[::\]):{port}\b", listening)


@pytest.mark.parametrize("path", ["/hub/login", "/jupyter/hub/login", f"/user/{MEMBER}/lab", "/hub/api"])
def test_nothing_of_the_hub_on_omero_webs_name(trust, path):
    answer = get(f"https://{WEB_NAME}{path}", verify=str(trust), allow_redirects=False)
    assert answer.status_code == 404, (answer.status_code, answer.text[-300:])
    assert "jupyter" not in answer.text.lower() and "jupyterhub-session-id" not in answer.cookies
    # While OMERO.web is served there, and not on the hub's name.
    web = get(f"https://{WEB_NAME}/webclient/login/", verify=str(trust))
    assert web.status_code == 200 and "csrfmiddlewaretoken" in web.text
    hub = get(f"{HUB_URL}/webclient/login/", verify=str(trust), allow_redirects=False)
    assert "csrfmiddlewaretoken" not in hub.text


def test_hub_not_served_by_address_or_another_name(analysis, trust):
    # The certificate names the address too: a refused handshake, not an untrusted one.
    with pytest.raises(requests.exceptions.SSLError):
        get(f"https://{analysis.address}/hub/login", verify=str(trust))
    # Plain HTTP with the hub's path under another Host: the connection closed (444).
    with pytest.raises(requests.exceptions.ConnectionError):
        get(f"http://{analysis.address}/hub/login", headers={"Host": "other.analysis.test"})


def test_certificate_names_both_sites(analysis):
    text = analysis.run(f"openssl x509 -in {CERTIFICATE} -noout -ext subjectAltName").stdout
    assert f"DNS:{WEB_NAME}" in text and f"DNS:{HUB_NAME}" in text


def test_hub_runs_under_systemd_with_secrets_of_its_own(analysis):
    service = analysis.testinfra.service("omero-jupyterhub")
    assert service.is_running and service.is_enabled
    # Made on the host, never shown: not even in the deploy's most verbose output.
    log = (ROOT / "artifacts" / f"deploy-{HOST_NAME}.log").read_text()
    assert "Starting operation: Make JupyterHub's cookie secret (on the host)" in log
    for secret in ("/var/lib/omero-jupyterhub/cookie_secret", "/var/lib/omero-jupyterhub/proxy_auth_token"):
        found = analysis.testinfra.file(secret)
        assert (found.user, found.group, found.mode, found.size) == ("root", "root", 0o600, 65)
        assert analysis.run(f"cat {secret}").stdout.strip() not in log


def test_member_not_in_group_refused(analysis, trust, accounts):
    session, answer = log_in(trust, OUTSIDER, accounts[OUTSIDER])
    assert answer.status_code == 403, (answer.status_code, answer.headers.get("location"))
    assert session.get(f"{HUB_URL}/hub/home", timeout=30, allow_redirects=False).status_code == 302


def test_wrong_password_refused(analysis, trust, accounts):
    _, answer = log_in(trust, MEMBER, accounts[MEMBER] + "x")
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


def execute(session, user_url: str, trust, kernel: str, code: str, timeout: float = 900) -> str:
    """``code`` run in ``kernel`` over its websocket, as JupyterLab sends it; its output."""
    xsrf = session.cookies.get("_xsrf", path=f"/user/{MEMBER}/")
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


@pytest.fixture(scope="module")
def data_dir(analysis):
    """/OMERO as an all-in-one host has it, world-listable (this host has no OMERO.server)."""
    analysis.run("mkdir -p /OMERO/ManagedRepository && chmod 755 /OMERO /OMERO/ManagedRepository")


@pytest.fixture(scope="module")
def lab(analysis, trust, accounts, data_dir):
    """The member logged in, their server started by the hub (as the "Start My Server" button
    does) and a kernel of theirs: (session, their server's URL, the kernel's id)."""
    session, answer = log_in(trust, MEMBER, accounts[MEMBER])
    assert answer.status_code == 302, answer.text[-500:]
    session.get(f"{HUB_URL}/hub/spawn", timeout=120)
    user_url = f"{HUB_URL}/user/{MEMBER}"
    open_lab(session, user_url)
    xsrf = session.cookies.get("_xsrf", path=f"/user/{MEMBER}/")
    started = session.post(f"{user_url}/api/kernels", json={"name": "python3"}, timeout=120,
                           headers={"X-XSRFToken": xsrf})
    assert started.status_code == 201, started.text
    return session, user_url, started.json()["id"]


def test_member_converts_pngs_in_a_kernel(analysis, trust, lab):
    session, user_url, kernel = lab
    output = execute(session, user_url, trust, kernel, KERNEL_CODE)
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


def test_members_server_is_a_unit_of_its_own_with_the_limits(analysis, trust, lab):
    shown = analysis.run(f"systemctl show {UNIT} -p ActiveState -p User -p MemoryMax -p TasksMax "
                         "-p CPUQuotaPerSecUSec -p NoNewPrivileges -p PrivateTmp -p InaccessiblePaths").stdout
    properties = dict(line.split("=", 1) for line in shown.splitlines())
    assert {key: properties[key] for key in ("ActiveState", "User", "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec",
                                             "NoNewPrivileges", "PrivateTmp")} == {
        # The spawner passes the member's uid (systemd-run --uid).
        "ActiveState": "active", "User": analysis.run(f"id -u {MEMBER}").stdout.strip(),
        "MemoryMax": str(2 << 30), "TasksMax": "512",
        "CPUQuotaPerSecUSec": "1s", "NoNewPrivileges": "yes", "PrivateTmp": "yes"}
    for tree in ("/OMERO", "/opt/omero/web/config", "/var/lib/omero-web", "/var/lib/omero-jupyterhub"):
        assert f"-{tree}" in properties["InaccessiblePaths"].split()
    # Seen from the member's kernel: in that unit, OMERO's trees closed (closed to a plain
    # login too, by their modes: the unit's hiding is a second lock), a /tmp of its own.
    assert analysis.run(f"runuser -u {MEMBER} -- ls /var/lib/omero-web", check=False).returncode != 0
    session, user_url, kernel = lab
    output = execute(session, user_url, trust, kernel, r"""
import json, os, pathlib
def opens(path):
    try:
        os.listdir(path)
        return True
    except OSError:
        return False
pathlib.Path("/tmp/from-the-kernel").write_text("x")
print("SEEN " + json.dumps({"cgroup": open("/proc/self/cgroup").read(),
                            "closed": [path for path in ("/OMERO", "/var/lib/omero-web", "/opt/omero/web/config")
                                       if not opens(path)]}))
""")
    seen = json.loads(output.split("SEEN ", 1)[1])
    assert f"/{UNIT}" in seen["cgroup"]
    assert seen["closed"] == ["/OMERO", "/var/lib/omero-web", "/opt/omero/web/config"]
    assert analysis.run("test -e /tmp/from-the-kernel", check=False).returncode == 1


@pytest.fixture(scope="module")
def hidden(analysis, secrets_dir):
    """What no lab member may read, by name; and the planted canary, which both walks must find."""
    analysis.run(f"echo {CANARY} > {CANARY_PATH} && chmod 644 {CANARY_PATH}")
    wanted = {
        "OMERO.web's Django secret key": analysis.run(
            "cat /opt/omero/web/OMERO.web/var/django_secret_key").stdout.strip(),
        "the hub's cookie secret": analysis.run("cat /var/lib/omero-jupyterhub/cookie_secret").stdout.strip(),
        "the proxy's auth token": analysis.run("cat /var/lib/omero-jupyterhub/proxy_auth_token").stdout.strip(),
        "the database password": generated(str(secrets_dir), f"{HOST_NAME}-db-omero"),
        "OMERO.web's mail password": MAIL_PASSWORD,
        "canary": CANARY,
    }
    assert all(len(value) >= 16 for value in wanted.values())  # each found only where it is
    return wanted


def assert_walk_finds_no_secret(walk: dict) -> None:
    assert walk["read"] > 10000, walk["read"]  # the venvs, /etc, /usr: a real walk
    found = dict(walk["found"])
    assert found.pop("canary") == [CANARY_PATH]
    assert found == {}


def test_member_reads_no_secret_from_a_notebook(trust, lab, hidden):
    session, user_url, kernel = lab
    output = execute(session, user_url, trust, kernel, f"SECRETS = {json.dumps(json.dumps(hidden))}\n{WALK}")
    assert_walk_finds_no_secret(json.loads(output.split("WALK ", 1)[1]))


def test_member_reads_no_secret_from_a_login(analysis, accounts, hidden):
    """Outside the hub's unit (an SSH login, a cron job): the files' own modes must hold."""
    script = f"SECRETS = open(0).read()\n{WALK}"
    result = run("podman", "exec", "-i", analysis.container, "runuser", "-u", MEMBER, "--",
                 "/opt/omero/analysis/user-venv/bin/python", "-c", script, input=json.dumps(hidden),
                 env=PODMAN_ENV, timeout=900)
    assert_walk_finds_no_secret(json.loads(result.stdout.split("WALK ", 1)[1]))


def test_ezomero_connect_needs_an_omero_server():
    pytest.skip("a real ezomero.connect() needs a running OMERO.server, which this test host has not "
                "(no OMERO.server artifact here); OMERO_HOST/OMERO_PORT are checked in the kernel instead")


def test_second_run_changes_nothing(analysis):
    assert hosts_with_changes(analysis.inventory) == {}


def test_permission_audit(analysis, secrets_dir):
    # The member's single-user server, still running, listens on 127.0.0.1 (a port the hub picks).
    assert_clean(analysis, secrets_dir, values=(MAIL_PASSWORD,),
                 listeners=(Listener(None, "127.0.0.1", owner=MEMBER),))


def test_the_documented_commands_let_a_member_in_and_out(analysis, trust):
    """docs/analysis.md's two lines, as written, typed by the host's administrator (sudo)."""
    let_in, let_out = block("docs/analysis.md", "sudo usermod -aG jupyterhub-users alice      "
                                                "# alice may now log in").splitlines()
    password = secrets.token_urlsafe(12)
    analysis.run(f"useradd --create-home --shell /bin/bash alice && echo 'alice:{password}' | chpasswd")
    for command, answer in ((None, 403), (let_in, 302), (let_out, 403)):
        if command:
            analysis.run(f"runuser -u {ADMIN} -- sh -e -c {shlex.quote(command)}")
        assert log_in(trust, "alice", password)[1].status_code == answer, command
