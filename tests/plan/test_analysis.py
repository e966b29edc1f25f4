"""The analysis environment (omero_analysis), planned on every supported OS: JupyterHub's
configuration as Python literals, its own nginx site on a name of its own (none of it on
OMERO.web's), per-user limits in systemd units, the proxy from npm on a Node.js new enough
(refused where it is not), the services, and what is refused before any host changes."""

import ast
import re

import pytest

from deploys.errors import OmeroDeployError, OmeroOptionError
from tests.certificates import CertificateAuthority

from .harness import SUPPORTED_OSES, unbatched
from .test_refusals import assert_refused_first

pytestmark = pytest.mark.plan

WEB_ANALYSIS = ("omero_web", "omero_analysis")
WEB_NAME, HUB_NAME = "omero.lab.example.org", "jupyter.lab.example.org"
HUB = {"omero_analysis_server_name": HUB_NAME}
# Both sites over HTTPS, with a certificate made on the host.
HTTPS = {**HUB, "omero_nginx_server_name": WEB_NAME, "omero_nginx_tls": "self-signed"}
HUB_CONFIG = "/opt/omero/analysis/jupyterhub_config.py"
SITE = "/etc/nginx/conf.d/omero-web.conf"
HUB_SITE = "/etc/nginx/conf.d/omero-jupyterhub.conf"
UNIT = "/etc/systemd/system/omero-jupyterhub.service"
NPM = ("rm -rf /opt/omero/analysis/proxy-5.1.0.partial && mkdir -p /opt/omero/analysis/proxy-5.1.0.partial && "
       "npm install --prefix /opt/omero/analysis/proxy-5.1.0.partial --userconfig /opt/omero/analysis/npmrc "
       "configurable-http-proxy@5.1.0 && chown -R root:root /opt/omero/analysis/proxy-5.1.0.partial && "
       "mv -T /opt/omero/analysis/proxy-5.1.0.partial /opt/omero/analysis/proxy-5.1.0")
ANALYSIS_OSES = tuple(os_name for os_name in SUPPORTED_OSES if os_name != "ubuntu22.04")
WHEEL = "/opt/omero/wheels/omero_movein-0.1.0-py3-none-any.whl"
# The host as a fresh one: the uploaded wheel newer than its last install (none); its addresses.
FRESH = {re.compile(r"omero-movein-installed\.done"): [WHEEL], re.compile(r"^hostname -I"): ["10.0.0.5 fd00::5"]}
INACCESSIBLE = ("-/OMERO -/opt/omero/server/config -/var/lib/omero-server -/opt/omero/web/config "
                "-/opt/omero/web/OMERO.web/etc -/var/lib/omero-web -/etc/omero-backup -/var/lib/omero-backup "
                "-/var/lib/omero-jupyterhub -/etc/nginx/omero-tls")


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
    return request.param, deploy({"lab": (WEB_ANALYSIS, HTTPS)}, os_name=request.param, responses=FRESH)["lab"]


def test_hub_configured_behind_its_site_with_pam_and_a_unit_per_user(planned):
    _, run = planned
    assert hub_settings(run.uploads[HUB_CONFIG]) == {
        "JupyterHub.bind_url": "http://127.0.0.1:8000/",
        "JupyterHub.public_url": f"https://{HUB_NAME}/",
        "JupyterHub.hub_bind_url": "http://127.0.0.1:8002",
        "ConfigurableHTTPProxy.api_url": "http://127.0.0.1:8001",
        "ConfigurableHTTPProxy.command": ["/opt/omero/analysis/proxy-5.1.0/node_modules/.bin/configurable-http-proxy"],
        "ConfigurableHTTPProxy.pid_file": "/var/lib/omero-jupyterhub/jupyterhub-proxy.pid",
        "JupyterHub.cookie_secret_file": "/var/lib/omero-jupyterhub/cookie_secret",
        "JupyterHub.db_url": "sqlite:////var/lib/omero-jupyterhub/jupyterhub.sqlite",
        "JupyterHub.authenticator_class": "pam",
        "PAMAuthenticator.allowed_groups": {"jupyterhub-users"},
        "JupyterHub.spawner_class": "systemdspawner.SystemdSpawner",
        "Spawner.cmd": ["/opt/omero/analysis/user-venv/bin/jupyterhub-singleuser"],
        "Spawner.default_url": "/lab",
        "Spawner.environment": {
            "OMERO_HOST": "localhost", "OMERO_PORT": "4064", "OMERO_SECURE": "True",
            "PATH": "/opt/omero/analysis/user-venv/bin:/usr/local/bin:/usr/bin:/bin"},
        "Spawner.start_timeout": 180,
        "Spawner.http_timeout": 120,
        # The documented defaults, and what systemd-run gives each user's unit.
        "Spawner.mem_limit": "2G",
        "Spawner.cpu_limit": 1.0,
        "SystemdSpawner.isolate_tmp": True,
        "SystemdSpawner.disable_user_sudo": True,
        "SystemdSpawner.default_shell": "/bin/bash",
        "SystemdSpawner.unit_extra_properties": {"TasksMax": "512", "InaccessiblePaths": INACCESSIBLE},
    }
    assert "Path('/var/lib/omero-jupyterhub/proxy_auth_token').read_text().strip()" in run.uploads[HUB_CONFIG]


def server_blocks(site: str) -> list[str]:
    """The text of each top-level ``server { ... }`` block of an nginx site."""
    blocks, depth, start = [], 0, None
    for index, char in enumerate(site):
        if char == "{":
            if depth == 0 and site[:index].rstrip().endswith("server"):
                start = index
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0 and start is not None:
                blocks.append(site[start:index])
                start = None
    return blocks


def directives(block: str, prefix: str) -> list[str]:
    return [line.strip() for line in block.splitlines() if line.strip().startswith(prefix)]


def test_hub_has_a_site_of_its_own_with_websockets(planned):
    _, run = planned
    hub_site = run.uploads[HUB_SITE]
    redirect, hub = server_blocks(hub_site)
    assert directives(redirect, "server_name") == directives(hub, "server_name") == [f"server_name {HUB_NAME};"]
    assert f"return 301 https://{HUB_NAME}$request_uri;" in redirect
    assert "location /.well-known/acme-challenge/ {" in redirect
    location = hub.split("location / {", 1)[1]
    for line in ("proxy_pass http://127.0.0.1:8000;", "proxy_http_version 1.1;",
                 "proxy_set_header Upgrade $http_upgrade;", "proxy_set_header Connection $omero_jupyter_connection;",
                 "proxy_set_header X-Scheme $scheme;", "proxy_set_header X-Forwarded-Proto $scheme;",
                 "proxy_read_timeout 1d;"):
        assert line in location, line
    assert hub.count("location ") == 1  # all of the name is the hub's
    assert "map $http_upgrade $omero_jupyter_connection {" in hub_site


def test_hub_site_has_the_web_sites_https_settings(planned):
    _, run = planned
    web = next(block for block in server_blocks(run.uploads[SITE]) if f"server_name {WEB_NAME};" in block
               and "ssl_certificate " in block)
    hub = server_blocks(run.uploads[HUB_SITE])[1]
    for prefix in ("listen", "http2", "ssl_", "server_tokens", "add_header", "client_max_body_size"):
        assert directives(hub, prefix) == directives(web, prefix), prefix
    assert 'add_header Strict-Transport-Security "max-age=63072000" always;' in hub
    assert "server_tokens off;" in hub and "ssl_protocols TLSv1.2 TLSv1.3;" in hub


def test_nothing_of_the_hub_on_omero_webs_names(planned):
    _, run = planned
    site = run.uploads[SITE]
    assert not re.search("jupyter|8000|omero_jupyter_connection", site)
    assert HUB_NAME not in site


def test_nginx_checks_and_reloads_for_the_hub_site(planned):
    _, run = planned
    # `nginx -t`, then the reload: each when a file is newer than nginx's last reload.
    decisions = [command for command in run.commands
                 if "-newer /var/lib/omero-pyinfra/nginx-reloaded.done" in command]
    assert decisions
    for decision in decisions:
        assert HUB_SITE in decision and SITE in decision


def test_self_signed_certificate_names_the_hub(planned):
    _, run = planned
    [made] = [command for command in run.commands if "openssl req -x509" in command]
    assert f"subjectAltName=DNS:{WEB_NAME},DNS:{HUB_NAME},IP:10.0.0.5,IP:fd00::5" in made
    assert f"/CN={WEB_NAME}" in made


def test_node_npm_and_the_proxy(planned):
    os_name, run = planned
    install = next(command for command in run.commands if "nodejs npm" in command)
    # Among the host's packages, in the one install.
    assert re.search(r"(install --no-install-recommends|dnf install -y) .*\bnodejs npm\b", install), install
    if os_name == "rocky9":
        # RHEL 9's own nodejs is 16: the module stream comes first.
        assert run.commands.index("dnf module enable -y nodejs:22") < run.commands.index(install)
    assert run.commands.index(install) < run.commands.index(NPM)
    npmrc = run.uploads["/opt/omero/analysis/npmrc"]
    ca_bundle = "/etc/pki/tls/certs/ca-bundle.crt" if os_name == "rocky9" else "/etc/ssl/certs/ca-certificates.crt"
    assert f"cafile={ca_bundle}" in npmrc.splitlines()


def test_two_venvs_and_the_data_tools(planned):
    _, run = planned
    assert ("/opt/omero/analysis/hub-venv/bin/pip install jupyterhub==6.1.1 jupyterhub-systemdspawner==1.0.2"
            in run.commands)
    # IcePy from the wheel cache (only as a wheel), in the same pip run as omero-py.
    users = next(command for command in run.commands if command.startswith(
        "/opt/omero/analysis/user-venv/bin/pip install --find-links /opt/omero/wheels --only-binary zeroc-ice "))
    assert set(users.split()[6:]) == {
        "zeroc-ice==3.6.5", "jupyterhub==6.1.1", "jupyterlab==4.6.6", "ipykernel", "omero-py==5.23.0",
        "ezomero==3.2.3", "scikit-image", "numpy", "tifffile", "ome-types", "lxml", "imageio", "tqdm"}
    for module in ("png2tiff", "positions", "conversion"):
        assert f"omero_movein/{module}.py" in run.uploads[WHEEL]
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
    assert "After=omero-web.service omero-jupyterhub.service" in run.uploads[
        "/etc/systemd/system/nginx.service.d/omero-web.conf"].splitlines()
    # Started after OMERO.web, waited for, then nginx (re)loaded to serve it.
    ops = run.ops
    assert (ops.index("Run and enable omero-web") < ops.index("Run and enable omero-jupyterhub")
            < ops.index("Wait until JupyterHub answers through its proxy") < ops.index("Run and enable nginx"))


def test_supervisord_program_between_web_and_nginx_with_local_servers(deploy):
    run = deploy({"lab": (WEB_ANALYSIS, HUB)}, os_name="debian12", pid1="sh")["lab"]
    program = run.uploads["/etc/supervisor/conf.d/omero-jupyterhub.conf"].splitlines()
    assert "command=/opt/omero/analysis/hub-venv/bin/jupyterhub -f /opt/omero/analysis/jupyterhub_config.py" in program
    assert {"user=root", "directory=/var/lib/omero-jupyterhub", "priority=350"} <= set(program)
    assert UNIT not in run.uploads
    # No systemd to put each user's server in a unit: the hub's children, without limits
    # (docs/analysis.md says so).
    hub = hub_settings(run.uploads[HUB_CONFIG])
    assert hub["JupyterHub.spawner_class"] == "localprocess"
    assert not [key for key in hub if key.startswith("SystemdSpawner.") or key.endswith("_limit")]
    assert "/opt/omero/analysis/hub-venv/bin/pip install jupyterhub==6.1.1" in run.commands
    assert not any("systemdspawner" in command for command in run.commands)
    # Plain HTTP: the hub's site on nginx's one port, under its name.
    assert directives(run.uploads[HUB_SITE], "listen") == ["listen 80;"]
    assert hub["JupyterHub.public_url"] == f"http://{HUB_NAME}/"


def test_options_reach_the_hub_and_nginx(deploy):
    data = {**HTTPS, "omero_analysis_port": 9100, "omero_nginx_https_listen": "[::]:8443",
            "omero_analysis_memory_limit": "512m", "omero_analysis_cpu_limit": 0.5, "omero_analysis_tasks_limit": 128,
            "omero_systemdspawner_version": "1.0.1",
            "omero_analysis_users_group": "imaging", "omero_analysis_omero_host": "omero.lab.example.org",
            "omero_analysis_proxy_version": "5.3.0", "omero_npm_registry_url": "https://npm.lab.example.org/",
            "omero_http_proxy": "http://user:pa%40ss@proxy.lab:3128"}
    run = deploy({"lab": (WEB_ANALYSIS, data)}, os_name="debian13", responses=FRESH)["lab"]
    hub = hub_settings(run.uploads[HUB_CONFIG])
    assert hub["JupyterHub.bind_url"] == "http://127.0.0.1:9100/"
    assert hub["JupyterHub.public_url"] == f"https://{HUB_NAME}:8443/"
    assert (hub["Spawner.mem_limit"], hub["Spawner.cpu_limit"]) == ("512M", 0.5)
    assert hub["SystemdSpawner.unit_extra_properties"]["TasksMax"] == "128"
    assert any("jupyterhub-systemdspawner==1.0.1" in command for command in run.commands)
    assert hub["ConfigurableHTTPProxy.api_url"] == "http://127.0.0.1:9101"
    assert hub["PAMAuthenticator.allowed_groups"] == {"imaging"}
    assert hub["Spawner.environment"]["OMERO_HOST"] == "omero.lab.example.org"
    assert "groupadd imaging" in run.commands
    hub_site = run.uploads[HUB_SITE]
    assert "location / {\n        proxy_pass http://127.0.0.1:9100;" in hub_site
    assert f"return 301 https://{HUB_NAME}:8443$request_uri;" in hub_site
    assert "listen [::]:8443 ssl;" in hub_site
    npmrc = run.uploads["/opt/omero/analysis/npmrc"].splitlines()
    assert {"registry=https://npm.lab.example.org/", "https-proxy=http://user:pa%40ss@proxy.lab:3128"} <= set(npmrc)
    assert "npm install" in " ".join(run.commands) and "configurable-http-proxy@5.3.0" in " ".join(run.commands)
    # The proxy's credentials never shown: npmrc travels as a secret.
    assert all("pa%40ss" not in command for command in run.commands)


def test_kernels_reach_the_inventorys_omero_server(deploy):
    runs = deploy({"server": (("omero_database", "omero_server"), {"omero_address": "omero-server.lab"}),
                   "lab": (WEB_ANALYSIS, {**HUB, "omero_address": "analysis.lab"})}, os_name="debian12")
    environment = hub_settings(runs["lab"].uploads[HUB_CONFIG])["Spawner.environment"]
    assert environment["OMERO_HOST"] == "omero-server.lab"
    assert not any("jupyterhub" in op for op in runs["server"].ops)


def test_other_hosts_get_nothing_of_it(deploy):
    run = deploy({"web": (("omero_web",), {})}, os_name="debian12")["web"]
    assert "jupyter" not in run.uploads[SITE] and "map $http_upgrade" not in run.uploads[SITE]
    assert HUB_SITE not in run.uploads
    assert not any(re.search("jupyter|nodejs|npm", command) for command in run.commands)
    assert "After=omero-web.service" in run.uploads["/etc/systemd/system/nginx.service.d/omero-web.conf"].splitlines()


def test_analysis_without_web_refused(deploy):
    with pytest.raises(OmeroDeployError, match=r"host @fake/lab is in omero_analysis but not in omero_web: "
                                               r"JupyterHub is served by the OMERO\.web host's nginx \(on a site of "
                                               r"its own\); put the host in omero_web too") as caught:
        deploy({"lab": (("omero_analysis",), HUB)}, execute=False)
    assert_refused_first(caught.value, host="lab")


def test_node_too_old_for_the_proxy_refused_on_ubuntu_22_04(deploy):
    with pytest.raises(OmeroOptionError, match=r"option omero_analysis_proxy_version \(host @fake/lab\): "
                                               r"configurable-http-proxy 5\.1\.0 needs Node\.js 18 or later, and "
                                               r"Ubuntu 22\.04 packages Node\.js 12") as caught:
        deploy({"lab": (WEB_ANALYSIS, HUB)}, os_name="ubuntu22.04", execute=False)
    assert_refused_first(caught.value, host="lab")
    # Node.js 18 (Debian 12) is too old for 5.2 and later.
    with pytest.raises(OmeroOptionError, match="configurable-http-proxy 5.3.0 needs Node.js 20 or later"):
        deploy({"lab": (WEB_ANALYSIS, {**HUB, "omero_analysis_proxy_version": "5.3.0"})}, os_name="debian12",
               execute=False)
    # The 4.x line declares Node.js 10: a lab may choose it on Ubuntu 22.04 (docs/analysis.md).
    run = deploy({"lab": (WEB_ANALYSIS, {**HUB, "omero_analysis_proxy_version": "4.6.3"})},
                 os_name="ubuntu22.04")["lab"]
    assert any("configurable-http-proxy@4.6.3" in command for command in run.commands)


RUNNING = {re.compile(r"systemctl show --all -p Id -p UnitFileState -p SubState"): [
    "Id=omero-jupyterhub.service", "SubState=running", ""]}
HUB_STAMP = "/var/lib/omero-pyinfra/omero-jupyterhub-started.done"


@pytest.mark.parametrize(("changed", "restarted"), [
    pytest.param([HUB_CONFIG], True, id="configuration newer than the hub's last start"),
    pytest.param([], False, id="nothing changed since"),
])
def test_hub_restarted_only_for_what_changed_on_the_host(deploy, changed, restarted):
    responses = {**RUNNING, re.compile(re.escape(HUB_STAMP)): changed}
    run = deploy({"lab": (WEB_ANALYSIS, HUB)}, os_name="debian12", responses=responses)["lab"]
    # Decided from the host: its files against the stamp of the hub's last start.
    # (Asked while planning and again while running: each stage asks the host as it is then.)
    checks = [command for command in unbatched(run.commands) if f"-newer {HUB_STAMP}" in command]
    assert checks
    for source in (UNIT, HUB_CONFIG, "/opt/omero/analysis/hub-venv/lib/python3*/site-packages",
                   "/var/lib/omero-jupyterhub/cookie_secret", "/var/lib/omero-jupyterhub/proxy_auth_token"):
        assert all(source in check for check in checks), source
    assert ("systemctl restart omero-jupyterhub.service" in run.commands) == restarted
    assert (f"touch {HUB_STAMP}" in run.commands) == restarted


@pytest.mark.parametrize(("data", "problem"), [
    pytest.param({}, "option omero_analysis_server_name (host @fake/lab): is required on omero_analysis hosts",
                 id="no name"),
    pytest.param({"omero_nginx_server_name": HUB_NAME},
                 f"{HUB_NAME} is omero_nginx_server_name's {HUB_NAME}: the hub needs a name", id="the web's"),
    pytest.param({"omero_nginx_server_name": f"{WEB_NAME} JUPYTER.lab.example.org"},
                 f"{HUB_NAME} is omero_nginx_server_name's JUPYTER.lab.example.org", id="the web's, in capitals"),
    pytest.param({"omero_nginx_server_name": "*.lab.example.org"},
                 f"{HUB_NAME} is below omero_nginx_server_name's *.lab.example.org", id="under the web's wildcard"),
    pytest.param({"omero_nginx_server_name": "omero.lab *.example.org"},
                 f"{HUB_NAME} is below omero_nginx_server_name's *.example.org", id="two labels below a wildcard"),
])
def test_hub_without_a_name_of_its_own_refused(deploy, data, problem):
    data = {"omero_analysis_server_name": HUB_NAME, **data} if data else {}
    with pytest.raises(OmeroOptionError, match=re.escape(problem)) as caught:
        deploy({"lab": (WEB_ANALYSIS, data)}, execute=False)
    assert caught.value.option == "omero_analysis_server_name"
    assert caught.value.example == HUB_NAME
    assert_refused_first(caught.value, host="lab")


@pytest.mark.parametrize("web_names", ["_", WEB_NAME, f"{WEB_NAME} _", "lab.example.org",
                                       "*.omero.lab.example.org", f"jupyter.{WEB_NAME}"])
def test_hub_name_apart_from_the_webs_passes(deploy, web_names):
    deploy({"lab": (WEB_ANALYSIS, {**HUB, "omero_nginx_server_name": web_names})}, execute=False)


def test_removed_path_option_refused_with_what_to_do(deploy):
    with pytest.raises(OmeroOptionError, match=r"option omero_analysis_path \(host @fake/lab\): was removed: "
                                               r"JupyterHub is served at / of a name of its own now .* set "
                                               r"omero_analysis_server_name") as caught:
        deploy({"lab": (WEB_ANALYSIS, {**HUB, "omero_analysis_path": "/jupyter/"})}, execute=False)
    assert_refused_first(caught.value, host="lab")


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


def test_given_certificate_must_cover_the_hub(deploy, ca):
    chain, key, _ = ca.issue("web-only", [WEB_NAME])
    data = {**HUB, "omero_nginx_server_name": WEB_NAME, "omero_nginx_tls_certificate": str(chain),
            "omero_nginx_tls_key": str(key)}
    with pytest.raises(OmeroOptionError, match=f"option omero_nginx_tls_certificate .*is not for {HUB_NAME} "
                                               f"\\(it names {WEB_NAME}\\)") as caught:
        deploy({"lab": (WEB_ANALYSIS, data)}, execute=False)
    assert_refused_first(caught.value, host="lab")
    # The same certificate serves a web host without the hub; one for both names serves both.
    deploy({"web": (("omero_web",), {key: value for key, value in data.items() if key not in HUB})}, execute=False)
    chain, key, _ = ca.issue("both", [WEB_NAME, HUB_NAME])
    run = deploy({"lab": (WEB_ANALYSIS, {**data, "omero_nginx_tls_certificate": str(chain),
                                         "omero_nginx_tls_key": str(key)})}, os_name="debian13")["lab"]
    assert "ssl_certificate /etc/nginx/omero-tls/site.crt;" in run.uploads[HUB_SITE]
