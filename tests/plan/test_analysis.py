"""The analysis environment (omero_analysis), planned on every supported OS: JupyterHub's
configuration as Python literals, nginx's location for it, the proxy from npm on a Node.js
new enough (refused where it is not), the services, and what is refused before any host
changes."""

import ast
import re

import pytest

from deploys.errors import OmeroDeployError, OmeroOptionError

from .harness import SUPPORTED_OSES
from .test_refusals import assert_refused_first

pytestmark = pytest.mark.plan

WEB_ANALYSIS = ("omero_web", "omero_analysis")
HUB_CONFIG = "/opt/omero/analysis/jupyterhub_config.py"
SITE = "/etc/nginx/conf.d/omero-web.conf"
UNIT = "/etc/systemd/system/omero-jupyterhub.service"
NPM = ("rm -rf /opt/omero/analysis/proxy-5.1.0.partial && mkdir -p /opt/omero/analysis/proxy-5.1.0.partial && "
       "npm install --prefix /opt/omero/analysis/proxy-5.1.0.partial --userconfig /opt/omero/analysis/npmrc "
       "configurable-http-proxy@5.1.0 && mv -T /opt/omero/analysis/proxy-5.1.0.partial /opt/omero/analysis/proxy-5.1.0")
ANALYSIS_OSES = tuple(os_name for os_name in SUPPORTED_OSES if os_name != "ubuntu22.04")
WHEEL = "/opt/omero/wheels/omero_movein-0.1.0-py3-none-any.whl"
# The host as a fresh one: the uploaded wheel newer than its last install (none).
FRESH = {re.compile(r"omero-movein-installed\.done"): [WHEEL]}


def hub_settings(config: str) -> dict[str, object]:
    """``c.Section.name = <literal>`` lines of jupyterhub_config.py, evaluated as literals
    (anything but a literal raises: values must reach the file as Python's repr)."""
    found = {}
    for node in ast.parse(config).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute):
            target = ast.unparse(node.targets[0])
            if target == "c.ConfigurableHTTPProxy.auth_token":
                continue  # read from its file on the host
            found[target.removeprefix("c.")] = ast.literal_eval(node.value)
    return found


@pytest.fixture(scope="module", params=ANALYSIS_OSES)
def planned(request, deploy):
    return request.param, deploy({"lab": (WEB_ANALYSIS, {})}, os_name=request.param, responses=FRESH)["lab"]


def test_hub_configured_behind_the_site_with_pam_and_local_servers(planned):
    _, run = planned
    assert hub_settings(run.uploads[HUB_CONFIG]) == {
        "JupyterHub.bind_url": "http://127.0.0.1:8000/jupyter/",
        "JupyterHub.hub_bind_url": "http://127.0.0.1:8002",
        "ConfigurableHTTPProxy.api_url": "http://127.0.0.1:8001",
        "ConfigurableHTTPProxy.command": ["/opt/omero/analysis/proxy-5.1.0/node_modules/.bin/configurable-http-proxy"],
        "ConfigurableHTTPProxy.pid_file": "/var/lib/omero-jupyterhub/jupyterhub-proxy.pid",
        "JupyterHub.cookie_secret_file": "/var/lib/omero-jupyterhub/cookie_secret",
        "JupyterHub.db_url": "sqlite:////var/lib/omero-jupyterhub/jupyterhub.sqlite",
        "JupyterHub.authenticator_class": "pam",
        "PAMAuthenticator.allowed_groups": {"jupyterhub-users"},
        "JupyterHub.spawner_class": "localprocess",
        "Spawner.cmd": ["/opt/omero/analysis/user-venv/bin/jupyterhub-singleuser"],
        "Spawner.default_url": "/lab",
        "Spawner.environment": {
            "OMERO_HOST": "localhost", "OMERO_PORT": "4064", "OMERO_SECURE": "True",
            "PATH": "/opt/omero/analysis/user-venv/bin:/usr/local/bin:/usr/bin:/bin"},
        "Spawner.start_timeout": 180,
        "Spawner.http_timeout": 120,
    }
    assert "Path('/var/lib/omero-jupyterhub/proxy_auth_token').read_text().strip()" in run.uploads[HUB_CONFIG]


def test_nginx_serves_the_hub_with_websockets(planned):
    _, run = planned
    site = run.uploads[SITE]
    location = site.split("location /jupyter/ {", 1)[1].split("}", 1)[0]
    for line in ("proxy_pass http://127.0.0.1:8000;", "proxy_http_version 1.1;",
                 "proxy_set_header Upgrade $http_upgrade;", "proxy_set_header Connection $omero_jupyter_connection;",
                 "proxy_set_header X-Scheme $scheme;", "proxy_read_timeout 1d;"):
        assert line in location, line
    assert "map $http_upgrade $omero_jupyter_connection {" in site
    # Before OMERO.web's catch-all location, on the HTTPS-less site too.
    assert site.index("location /jupyter/ {") < site.index("location / {")


def test_node_npm_and_the_proxy(planned):
    os_name, run = planned
    install = next(command for command in run.commands if "nodejs npm" in command)
    assert install.endswith("install --no-install-recommends nodejs npm") or install == "dnf install -y nodejs npm"
    if os_name == "rocky9":
        # RHEL 9's own nodejs is 16: the module stream comes first.
        assert run.commands.index("dnf module enable -y nodejs:22") < run.commands.index(install)
    assert run.commands.index(install) < run.commands.index(NPM)
    npmrc = run.uploads["/opt/omero/analysis/npmrc"]
    ca_bundle = "/etc/pki/tls/certs/ca-bundle.crt" if os_name == "rocky9" else "/etc/ssl/certs/ca-certificates.crt"
    assert f"cafile={ca_bundle}" in npmrc.splitlines()


def test_two_venvs_and_the_data_tools(planned):
    _, run = planned
    assert "/opt/omero/analysis/hub-venv/bin/pip install jupyterhub==6.1.1" in run.commands
    users = next(command for command in run.commands
                 if command.startswith("/opt/omero/analysis/user-venv/bin/pip install jupyterhub=="))
    assert set(users.split()[2:]) == {
        "jupyterhub==6.1.1", "jupyterlab==4.6.6", "ipykernel", "omero-py==5.23.0", "ezomero==3.2.3",
        "scikit-image", "numpy", "tifffile", "ome-types", "lxml", "imageio", "tqdm"}
    # IcePy from the wheel cache, before omero-py.
    icepy = ("/opt/omero/analysis/user-venv/bin/pip install --no-index --find-links /opt/omero/wheels "
             "zeroc-ice==3.6.5")
    assert run.commands.index(icepy) < run.commands.index(users)
    assert "omero_movein/png2tiff.py" in run.uploads[WHEEL]
    install = f"/opt/omero/analysis/user-venv/bin/pip install --quiet --no-deps --no-index --force-reinstall {WHEEL}"
    assert run.commands.index(users) < run.commands.index(install)
    assert run.commands[run.commands.index(install) + 1] == "touch /var/lib/omero-pyinfra/omero-movein-installed.done"


def test_secrets_made_on_the_host_never_sent(planned):
    _, run = planned
    for secret in ("cookie_secret", "proxy_auth_token"):
        path = f"/var/lib/omero-jupyterhub/{secret}"
        made = next(command for command in run.commands if command.startswith("(umask 077 && ") and path in command)
        assert f"> {path}.partial) && mv {path}.partial {path}" in made
        assert path not in run.uploads
        assert f"chmod 600 {path}" in run.commands


def test_hub_unit_runs_as_root_and_nginx_starts_after(planned):
    _, run = planned
    unit = run.uploads[UNIT]
    assert "User=root" in unit.splitlines()
    assert ("ExecStart=/opt/omero/analysis/hub-venv/bin/jupyterhub -f /opt/omero/analysis/jupyterhub_config.py"
            in unit.splitlines())
    assert not any(line.startswith("ProtectHome=") for line in unit.splitlines())  # users' servers: their homes
    assert "After=omero-web.service omero-jupyterhub.service" in run.uploads[
        "/etc/systemd/system/nginx.service.d/omero-web.conf"].splitlines()
    # Started after OMERO.web, waited for, then nginx (re)loaded to serve it.
    ops = run.ops
    assert (ops.index("Run and enable omero-web") < ops.index("Run and enable omero-jupyterhub")
            < ops.index("Wait until JupyterHub answers through its proxy") < ops.index("Run and enable nginx"))


def test_supervisord_program_between_web_and_nginx(deploy):
    run = deploy({"lab": (WEB_ANALYSIS, {})}, os_name="debian12", pid1="sh")["lab"]
    program = run.uploads["/etc/supervisor/conf.d/omero-jupyterhub.conf"].splitlines()
    assert "command=/opt/omero/analysis/hub-venv/bin/jupyterhub -f /opt/omero/analysis/jupyterhub_config.py" in program
    assert {"user=root", "directory=/var/lib/omero-jupyterhub", "priority=350"} <= set(program)
    assert UNIT not in run.uploads


def test_options_reach_the_hub_and_nginx(deploy):
    data = {"omero_analysis_path": "/lab/notebooks/", "omero_analysis_port": 9100,
            "omero_analysis_users_group": "imaging", "omero_analysis_omero_host": "omero.lab.example.org",
            "omero_analysis_proxy_version": "5.3.0", "omero_npm_registry_url": "https://npm.lab.example.org/",
            "omero_http_proxy": "http://user:pa%40ss@proxy.lab:3128"}
    run = deploy({"lab": (WEB_ANALYSIS, data)}, os_name="debian13")["lab"]
    hub = hub_settings(run.uploads[HUB_CONFIG])
    assert hub["JupyterHub.bind_url"] == "http://127.0.0.1:9100/lab/notebooks/"
    assert hub["ConfigurableHTTPProxy.api_url"] == "http://127.0.0.1:9101"
    assert hub["PAMAuthenticator.allowed_groups"] == {"imaging"}
    assert hub["Spawner.environment"]["OMERO_HOST"] == "omero.lab.example.org"
    assert "groupadd imaging" in run.commands
    assert "location /lab/notebooks/ {\n        proxy_pass http://127.0.0.1:9100;" in run.uploads[SITE]
    npmrc = run.uploads["/opt/omero/analysis/npmrc"].splitlines()
    assert {"registry=https://npm.lab.example.org/", "https-proxy=http://user:pa%40ss@proxy.lab:3128"} <= set(npmrc)
    assert "npm install" in " ".join(run.commands) and "configurable-http-proxy@5.3.0" in " ".join(run.commands)
    # The proxy's credentials never shown: npmrc travels as a secret.
    assert all("pa%40ss" not in command for command in run.commands)


def test_kernels_reach_the_inventorys_omero_server(deploy):
    runs = deploy({"server": (("omero_database", "omero_server"), {"omero_address": "omero-server.lab"}),
                   "lab": (WEB_ANALYSIS, {"omero_address": "analysis.lab"})}, os_name="debian12")
    environment = hub_settings(runs["lab"].uploads[HUB_CONFIG])["Spawner.environment"]
    assert environment["OMERO_HOST"] == "omero-server.lab"
    assert not any("jupyterhub" in op for op in runs["server"].ops)


def test_other_hosts_get_nothing_of_it(deploy):
    run = deploy({"web": (("omero_web",), {})}, os_name="debian12")["web"]
    assert "jupyter" not in run.uploads[SITE] and "map $http_upgrade" not in run.uploads[SITE]
    assert not any(re.search("jupyter|nodejs|npm", command) for command in run.commands)
    assert "After=omero-web.service" in run.uploads["/etc/systemd/system/nginx.service.d/omero-web.conf"].splitlines()


def test_analysis_without_web_refused(deploy):
    with pytest.raises(OmeroDeployError, match=r"host @fake/lab is in omero_analysis but not in omero_web: "
                                               r"JupyterHub is served under /jupyter/ by the OMERO\.web site's nginx; "
                                               r"put the host in omero_web too") as caught:
        deploy({"lab": (("omero_analysis",), {})}, execute=False)
    assert_refused_first(caught.value, host="lab")


def test_node_too_old_for_the_proxy_refused_on_ubuntu_22_04(deploy):
    with pytest.raises(OmeroOptionError, match=r"option omero_analysis_proxy_version \(host @fake/lab\): "
                                               r"configurable-http-proxy 5\.1\.0 needs Node\.js 18 or later, and "
                                               r"Ubuntu 22\.04 packages Node\.js 12") as caught:
        deploy({"lab": (WEB_ANALYSIS, {})}, os_name="ubuntu22.04", execute=False)
    assert_refused_first(caught.value, host="lab")
    # Node.js 18 (Debian 12) is too old for 5.2 and later.
    with pytest.raises(OmeroOptionError, match="configurable-http-proxy 5.3.0 needs Node.js 20 or later"):
        deploy({"lab": (WEB_ANALYSIS, {"omero_analysis_proxy_version": "5.3.0"})}, os_name="debian12",
               execute=False)
    # The 4.x line declares Node.js 10: a lab may choose it on Ubuntu 22.04 (docs/analysis.md).
    run = deploy({"lab": (WEB_ANALYSIS, {"omero_analysis_proxy_version": "4.6.3"})}, os_name="ubuntu22.04")["lab"]
    assert any("configurable-http-proxy@4.6.3" in command for command in run.commands)


RUNNING = {re.compile(r"systemctl show --all --property Id --property SubState"): [
    "Id=omero-jupyterhub.service", "SubState=running", ""]}
HUB_STAMP = "/var/lib/omero-pyinfra/omero-jupyterhub-started.done"


@pytest.mark.parametrize(("changed", "restarted"), [
    pytest.param([HUB_CONFIG], True, id="configuration newer than the hub's last start"),
    pytest.param([], False, id="nothing changed since"),
])
def test_hub_restarted_only_for_what_changed_on_the_host(deploy, changed, restarted):
    responses = {**RUNNING, re.compile(re.escape(HUB_STAMP)): changed}
    run = deploy({"lab": (WEB_ANALYSIS, {})}, os_name="debian12", responses=responses)["lab"]
    # Decided from the host: its files against the stamp of the hub's last start.
    [check] = [command for command in run.commands if HUB_STAMP in command and command.startswith("for f in")]
    for source in (UNIT, HUB_CONFIG, "/opt/omero/analysis/hub-venv/lib/python3*/site-packages",
                   "/var/lib/omero-jupyterhub/cookie_secret", "/var/lib/omero-jupyterhub/proxy_auth_token"):
        assert source in check, source
    assert ("systemctl restart omero-jupyterhub.service" in run.commands) == restarted
    assert (f"touch {HUB_STAMP}" in run.commands) == restarted
