"""The front proxy (omero_proxy) and the web nodes behind it, planned on fake hosts for every
supported OS: the proxy's site (upstream, caches and their privacy, maintenance), what the web
nodes admit and believe, the rolling restart's turns, and the inventories refused."""

import re

import pytest

from deploys.errors import OmeroDeployError
from deploys.options import DEFAULTS
from deploys.proxy import node_line

from .harness import SUPPORTED_OSES

pytestmark = pytest.mark.plan

NAME = "omero.lab.example.org"
SITE = {"omero_nginx_server_name": NAME, "omero_nginx_tls": "self-signed"}
PROXY_SITE = "/etc/nginx/conf.d/omero-proxy.conf"
WEB_SITE = "/etc/nginx/conf.d/omero-web.conf"
WEB_CONFIG = "/opt/omero/web/config/01-omero-web.omero"
NODES = "/etc/nginx/omero-proxy-nodes"
WEB_STAMP = "/var/lib/omero-pyinfra/omero-web-started.done"


def farm(proxy: dict | None = None, web: dict | None = None, nodes: int = 2) -> dict:
    hosts = {"proxy": (("omero_proxy",), {**SITE, "omero_address": "10.0.0.10", **(proxy or {})})}
    for n in range(1, nodes + 1):
        hosts[f"web{n}"] = (("omero_web",), {**SITE, "omero_address": f"10.0.0.{10 + n}", **(web or {})})
    return hosts


@pytest.mark.parametrize("os_name", SUPPORTED_OSES)
def test_proxy_terminates_tls_and_balances_over_every_web_node(deploy, os_name):
    runs = deploy(farm(), os_name=os_name)
    proxy = runs["proxy"]
    site = proxy.uploads[PROXY_SITE]
    # TLS as an all-in-one web host has it: the same certificate operations, profile and headers.
    assert "Make the site's self-signed certificate when due" in proxy.ops
    assert "ssl_certificate /etc/nginx/omero-tls/site.crt;" in site
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in site
    assert 'add_header Strict-Transport-Security "max-age=63072000" always;' in site
    assert "return 301 https://$host$request_uri;" in site
    # One upstream over the nodes' files, kept alive; each node's line with passive health.
    assert f"include {NODES}/*.conf;" in site and "keepalive 16;" in site
    assert proxy.uploads[f"{NODES}/fake_web1.conf"] == "server 10.0.0.11:80 max_fails=2 fail_timeout=10s;\n"
    assert proxy.uploads[f"{NODES}/fake_web2.conf"] == "server 10.0.0.12:80 max_fails=2 fail_timeout=10s;\n"
    # Idempotent requests retried on the next node, boundedly; the original scheme passed on.
    assert "proxy_next_upstream error timeout http_502 http_503 http_504;" in site
    assert "proxy_next_upstream_tries 3;" in site and "proxy_next_upstream_timeout 30s;" in site
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in site
    # Caches per kind, with their sizes, and the cache status on every response.
    for kind, size in (("static", "1g"), ("thumbnails", "1g"), ("images", "4g")):
        assert (f"proxy_cache_path /var/cache/omero-proxy/{kind} levels=1:2 keys_zone=omero_{kind}:10m "
                f"max_size={size} inactive=1d use_temp_path=off;") in site
    assert "add_header X-Cache-Status $upstream_cache_status always;" in site
    # nginx runs it, checked first; no web node's login page is waited for here but through it.
    assert proxy.ops[-4:] == ["Check the nginx configuration", "Run and enable nginx",
                              "Reload nginx for its new configuration", "Wait until nginx serves OMERO.web"]


def locations(site: str) -> dict[str, str]:
    """Each location's block by its match."""
    return dict(re.findall(r"^    location ([^{\n]+?) \{(.*?)\n    \}", site, re.S | re.M))


def test_private_images_cached_per_session_by_default(deploy):
    site = deploy(farm())["proxy"].uploads[PROXY_SITE]
    blocks = locations(site)
    thumbnails = blocks["~ ^/(?:webgateway|webclient)/(?:render_thumbnail|get_thumbnail|get_thumbnails)/"]
    images = blocks["~ ^/(?:webgateway|webclient)/(?:render_image|render_image_region|"
                    "render_birds_eye_view|render_split_channel)/"]
    for block in (thumbnails, images):
        assert 'proxy_cache_key "$scheme$host$request_uri $cookie_sessionid";' in block
        # No session: neither served from the cache nor cached.
        assert "proxy_cache_bypass $omero_no_session;" in block and "proxy_no_cache $omero_no_session;" in block
        # A response setting a cookie is never cached: Set-Cookie is not among the ignored headers.
        assert "proxy_ignore_headers Cache-Control Expires;" in block
    # Static files are the same for everyone.
    assert 'proxy_cache_key "$scheme$host$request_uri";' in blocks["/static/"]
    assert "proxy_cache" not in blocks["/"]


def test_shared_cache_for_public_sites(deploy):
    site = deploy(farm(proxy={"omero_proxy_cache_shared": True, "omero_proxy_cache_images_size": "20g",
                              "omero_proxy_cache_minutes": 60}))["proxy"].uploads[PROXY_SITE]
    assert "$cookie_sessionid\";" not in site and "proxy_cache_bypass" not in site
    assert site.count('proxy_cache_key "$scheme$host$request_uri";') == 3
    assert site.count("proxy_ignore_headers Cache-Control Expires Vary;") == 3
    assert "keys_zone=omero_images:10m max_size=20g" in site
    assert site.count("proxy_cache_valid 200 60m;") == 3


def test_maintenance_answers_every_request_with_503_but_acme(deploy):
    run = deploy(farm(proxy={"omero_proxy_maintenance": True}))["proxy"]
    site = run.uploads[PROXY_SITE]
    main = site.split("server_name omero.lab.example.org;")[-1]
    assert "proxy_pass" not in main and "return 503;" in main
    assert "add_header Retry-After 300 always;" in main and "error_page 503 @maintenance;" in main
    assert "Down for maintenance" in run.uploads["/var/www/omero-maintenance/maintenance.html"]
    # The plain HTTP server still answers ACME challenges.
    assert "location /.well-known/acme-challenge/" in site.split("server_name omero.lab.example.org;")[1]
    # The deploy returns once nginx serves the maintenance page (a reload returns before).
    [wait] = [command for command in run.commands if command.startswith("i=0; until curl")]
    assert "curl -gsk -o /dev/null -w '%{http_code}' " in wait and "/webclient/login/ | grep -qx 503;" in wait


@pytest.mark.parametrize("os_name", SUPPORTED_OSES)
def test_web_nodes_admit_the_proxy_alone_and_leave_tls_to_it(deploy, os_name):
    web = deploy(farm(), os_name=os_name)["web1"]
    site = web.uploads[WEB_SITE]
    # No TLS of their own: plain HTTP to the proxy, no certificate made.
    assert "ssl_certificate" not in site and "listen 80" in site
    assert not any("certificate" in op for op in web.ops)
    # The proxy (and checks on the node) only; its forwarded headers believed from it alone.
    assert "geo $realip_remote_addr $omero_peer {" in site and "    10.0.0.10 proxy;" in site
    assert 'if ($omero_peer = "") {\n        return 403;' in site
    assert "set_real_ip_from 10.0.0.10;" in site and "real_ip_header X-Forwarded-For;" in site
    assert "proxy_set_header X-Forwarded-Proto $omero_forwarded_proto;" in site
    # OMERO.web told the site as browsers reach it: the proxy's HTTPS and names.
    config = web.uploads[WEB_CONFIG]
    assert "config set -- omero.web.secure_proxy_ssl_header '[\"HTTP_X_FORWARDED_PROTO\", \"https\"]'" in config
    assert f"omero.web.allowed_hosts '[\"{NAME}\"]'" in config
    assert f"omero.web.csrf_trusted_origins '[\"https://{NAME}\"]'" in config


def test_without_a_proxy_a_web_host_is_unchanged(deploy):
    site = deploy({"web": (("omero_web",), SITE)})["web"].uploads[WEB_SITE]
    assert "omero_peer" not in site and "set_real_ip_from" not in site
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in site


def test_nodes_gone_from_the_inventory_leave_the_upstream(deploy):
    listing = {re.compile(rf"^find {NODES} -mindepth 1"): ["fake_web1.conf", "fake_web2.conf", "fake_old.conf"]}
    run = deploy(farm(), responses=listing)["proxy"]
    assert f"rm -rf {NODES}/fake_old.conf" in run.commands
    assert not any(f"rm -rf {NODES}/fake_web" in command for command in run.commands)


RUNNING = {re.compile(r"systemctl show --all -p Id -p UnitFileState -p SubState"): [
    "Id=omero-web.service", "SubState=running", ""]}
WEB_VENV = "/opt/omero/web/venv3"


def venv_holding(web_version: str) -> dict:
    """The answer of the venvs' fact: OMERO.web's venv with ``web_version`` and the pinned omero-py."""
    return {re.compile(r"dist-info"): [f"venv {WEB_VENV}", f"dist omero_web-{web_version}.dist-info",
                                       f"dist omero_py-{DEFAULTS['omero_py_version']}.dist-info",
                                       "dist gunicorn-23.0.0.dist-info"]}


def drains_of(runs, name: str) -> list[str]:
    node_file = f"{NODES}/fake_{name}.conf"
    return [command for command in runs["proxy"].raw_commands if node_file in command and "nginx -s reload" in command]


@pytest.mark.parametrize(("changed", "rolled"), [
    pytest.param([WEB_CONFIG], True, id="configuration newer than omero-web's last start"),
    pytest.param([], False, id="nothing changed since"),
])
def test_web_nodes_restart_in_turn_drained_from_the_proxy(deploy, changed, rolled):
    responses = {**RUNNING, **venv_holding(DEFAULTS["omero_web_version"]), re.compile(re.escape(WEB_STAMP)): changed}
    runs = deploy(farm(), os_name="debian12", responses=responses)
    for name in ("web1", "web2"):
        web = runs[name]
        drains = drains_of(runs, name)
        assert ("systemctl restart omero-web.service" in web.raw_commands) == rolled
        if not rolled:
            assert drains == []
            continue
        endpoint = f"10.0.0.{10 + int(name[-1])}:80"
        # Drained (down), then put back up, each by a graceful reload, around the restart.
        assert [node_line(endpoint, down=True) in drains[0], node_line(endpoint) in drains[1]] == [True, True]
        assert len(drains) == 2
        # Its restart stamp touched after the turn (the fake host still answers "changed", so
        # services.start's own restart after it shows here; tests/host/test_farm.py sees none).
        assert f"touch {WEB_STAMP}" in web.raw_commands


def test_web_nodes_upgraded_in_turn_drained_from_the_proxy(deploy):
    # Running omero-web 5.29.2: each node's new release is installed in its turn, then restarted.
    runs = deploy(farm(), os_name="debian12", responses={**RUNNING, **venv_holding("5.29.2")})
    for name in ("web1", "web2"):
        web = runs[name]
        endpoint = f"10.0.0.{10 + int(name[-1])}:80"
        drains = drains_of(runs, name)
        assert len(drains) == 2
        assert node_line(endpoint, down=True) in drains[0] and node_line(endpoint) in drains[1]
        install = f"{WEB_VENV}/bin/pip install omero-web=={DEFAULTS['omero_web_version']}"
        turn = web.raw_commands.index(install)
        assert web.raw_commands[turn + 1].startswith("runuser -u omero-web -- env OMERODIR=")
        assert web.raw_commands[turn + 2] == "systemctl restart omero-web.service"
        assert f"touch {WEB_STAMP}" in web.raw_commands[turn:]


@pytest.mark.parametrize(("hosts", "problem"), [
    pytest.param({"proxy": (("omero_proxy",), {})}, "is in omero_proxy but the inventory has no omero_web host",
                 id="no web node"),
    pytest.param({"both": (("omero_proxy", "omero_web"), {"omero_address": "10.0.0.3"})},
                 "is in omero_proxy and omero_web", id="proxy and web on one host"),
    pytest.param({"proxy": (("omero_proxy",), {"omero_address": "proxy.lab.example.org"}),
                  "web": (("omero_web",), {"omero_address": "10.0.0.4"})},
                 "by its IP address", id="proxy known by name only"),
    pytest.param({"proxy": (("omero_proxy",), {"omero_address": "10.0.0.3"}),
                  "web": (("omero_web",), {})},
                 "set its omero_address", id="web node without an address"),
    pytest.param({"proxy": (("omero_proxy", "omero_database"), {"omero_address": "10.0.0.3"}),
                  "web": (("omero_web",), {"omero_address": "10.0.0.4"})},
                 "is a host of its own", id="proxy with the database"),
])
def test_farm_inventories_refused(deploy, hosts, problem):
    with pytest.raises(OmeroDeployError, match=re.escape(problem)):
        deploy(hosts, execute=False)


def test_proxies_must_agree_on_the_site(deploy):
    hosts = {**farm(), "proxy2": (("omero_proxy",), {**SITE, "omero_address": "10.0.0.9",
                                                      "omero_nginx_server_name": "other.lab.example.org"})}
    with pytest.raises(OmeroDeployError, match="differ in omero_nginx_server_name"):
        deploy(hosts, execute=False)
