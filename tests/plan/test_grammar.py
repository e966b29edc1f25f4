"""Legitimate values pass the options' grammars and are parsed once into what the deploy
uses; docs/malformed-input.md shows what the deploy really says about bad ones."""

import ast
import json
import re
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

from deploys import checks, settings, topology
from deploys.errors import OmeroDeployError, OmeroOptionError
from deploys.options import DEFAULTS, OPTIONS
from deploys.platform import Platform, detect
from deploys.values import Endpoint

from .conftest import ALL_ROLES
from .test_refusals import CERTIFICATE, PRIVATE_KEY, LocalFile

pytestmark = pytest.mark.plan

ROOT = Path(__file__).resolve().parents[2]
UBUNTU = detect({"release_meta": {"ID": "ubuntu", "VERSION_ID": "24.04"}, "major": 24})
TOP_LINKS = [["Data", "webindex", {"title": "Browse Data via Projects, Tags etc"}],
             ["Help", "https://help.openmicroscopy.org/", {"title": "Open OMERO user guide",
                                                            "target": "new"}]]


def good(option, value, **more):
    return pytest.param({option: value, **more}, id=f"{option}={value!r}"[:60])


GOOD_OPTIONS = [
    good("omero_web_bind", "[::1]:4080"),
    good("omero_web_bind", "[0:0::1]:4080"),
    good("omero_web_bind", "127.0.0.2:4080"),
    good("omero_web_bind", "localhost:4080"),
    good("omero_web_bind", "127.0.0.1:8080"),
    good("omero_nginx_listen", 80),
    good("omero_nginx_listen", "8080"),
    good("omero_nginx_listen", "[::]:80"),
    good("omero_nginx_listen", "10.0.0.5:443"),
    good("omero_nginx_listen", "10.0.0.5:8080", omero_web_bind="127.0.0.1:8080"),
    good("omero_address", "10.0.0.11"),
    good("omero_address", "2001:db8::11"),
    good("omero_address", "omero-db.lab.example.org"),
    good("omero_address", "OMERO.Lab.Example.org"),
    good("omero_address", "localhost"),
    good("omero_web_server_host", "192.168.1.10"),
    good("omero_web_server_host", "fe80::1"),
    good("omero_web_server_host", "omero.lab.example.org"),
    good("omero_nginx_server_name", "omero.lab.example.org www.omero.lab.example.org"),
    good("omero_nginx_server_name", "*.example.org"),
    good("omero_nginx_server_name", "omero.lab.example.org _"),
    good("omero_nginx_server_name", "10.0.0.5"),
    good("omero_data_dir", "/data/OMERO"),
    good("omero_data_dir", "/srv/omero/"),
    good("omero_data_dir", "/var/lib/omero/data"),
    good("omero_data_dir", "/home/omero/OMERO"),
    good("omero_wheel_dir", "/opt/omero/wheels+cache@v1"),
    good("omero_server_basedir", "/opt/omero/server-5.6"),
    good("omero_ice_home", "/opt/ice-3.6.5_x86-64"),
    good("omero_web_basedir", "/srv/omero//web"),
    good("omero_server_db_dump_dir", "/srv/backups/omero"),
    good("omero_server_user", "omero-srv"),
    good("omero_server_user", "_omero"),
    good("omero_web_user", "omeroweb"),
    good("omero_group", "omero_users"),
    good("omero_db_name", "omero_prod"),
    good("omero_db_name", "omero2"),
    good("omero_db_user", "omero_user"),
    good("omero_db_user", "postgres_omero"),
    good("omero_web_config", {"omero.web.ui.top_links": TOP_LINKS}),
    good("omero_web_config", {"omero.web.open_with": [["omero_iviewer", "omero_iviewer_index",
                                                       {"supported_objects": ["image"]}]]}),
    good("omero_web_config", {"omero.web.public.enabled": True, "omero.web.public.url_filter":
                              "^/(webadmin/myphoto/|webclient/(?!(logout|activities)))"}),
    good("omero_web_config", {"omero.web.login_logo": "Bücherei — Lab ✓"}),
    good("omero_server_config", {"omero.jvmcfg.percent.blitz": 50, "omero.mail.from":
                                 "omero@lab.example.org", "omero.ldap.config": False,
                                 "omero.throttling.method_time.error": 20000.5}),
    good("omero_server_config", {"omero.policy.binary_access": "+read,+write,+image"}),
    good("omero_http_proxy", "http://proxy.lab.example.org:3128"),
    good("omero_http_proxy", "http://omero:s3cr%40t@proxy.lab:3128"),
    good("omero_http_proxy", "http://[2001:db8::1]:3128"),
    good("omero_http_proxy", "https://10.0.0.1:8443/"),
    good("omero_pip_index_url", "https://pypi.lab.example.org/simple/"),
    good("omero_pip_index_url", "http://devpi.lab:3141/root/pypi/+simple/"),
    good("omero_db_port", 5433),
    good("omero_db_port", 65535),
    good("omero_web_workers", 1),
    *(good("omero_java_version", version) for version in (11, 17, 21)),
    good("omero_extra_ca_certificates", [LocalFile("lab-ca.pem", CERTIFICATE)]),
    good("omero_extra_ca_certificates", [LocalFile("a/lab-ca.pem", CERTIFICATE),
                                         LocalFile("b/proxy-ca.crt", CERTIFICATE * 2)]),
    good("omero_py_version", "5.24.0"),
    good("omero_web_version", "10.0.12"),
    good("omero_web_apps", ["omero-figure", "omero-iviewer", "omero-parade", "omero-mapr"]),
    good("omero_web_apps", ("omero-figure==7.2.0",)),
    good("omero_nginx_tls", "self-signed", omero_nginx_https_listen="[::]:8443"),
    good("omero_nginx_tls", "acme", omero_nginx_listen=8080, omero_nginx_https_listen=443),
    good("omero_nginx_https_listen", "10.0.0.5:443", omero_nginx_listen="10.0.0.6:443", omero_nginx_tls="acme"),
    good("omero_nginx_https_listen", 80),  # HTTPS off: not listened on
    good("omero_nginx_client_max_body_size", "2G"),
    good("omero_nginx_client_max_body_size", "512k"),
    good("omero_web_request_timeout", 3600),
    good("omero_nginx_tls_renew_days", 365),
    good("omero_nginx_hsts", False),
    good("omero_backup_link_targets", False),
    good("omero_server_dropbox", True),
    good("omero_dropbox_version", "5.6.2"),
]


def made(value, directory):
    """``value`` with its LocalFiles made in ``directory``, as their paths."""
    if isinstance(value, list):
        return [made(item, directory) for item in value]
    return value.make(directory) if isinstance(value, LocalFile) else value


@pytest.mark.parametrize("data", GOOD_OPTIONS)
def test_good_value_accepted(tmp_path, data):
    data = {key: made(value, tmp_path) for key, value in data.items()}
    checks.parse_options({**DEFAULTS, **data}, UBUNTU, "aio")


# Good values together, planned and run on a fake host (a plan takes a second: a few only).
PLANNED = {
    "ipv6": {"omero_web_bind": "[::1]:4080", "omero_nginx_listen": "[::]:80",
             "omero_address": "2001:db8::11", "omero_http_proxy": "http://[2001:db8::1]:3128",
             "omero_nginx_server_name": "omero.lab.example.org _"},
    "names-and-paths": {
        "omero_web_bind": "localhost:8080", "omero_nginx_listen": 8081,
        "omero_address": "omero.lab.example.org", "omero_nginx_server_name": "*.example.org",
        "omero_data_dir": "/srv/omero/data/", "omero_server_basedir": "/srv/omero//server",
        "omero_web_basedir": "/srv/omero/web", "omero_server_user": "omero-srv",
        "omero_web_user": "omeroweb", "omero_group": "omero_users", "omero_db_name": "omero_prod",
        "omero_db_user": "omero_user", "omero_db_port": 5433, "omero_web_workers": 1,
        "omero_http_proxy": "http://omero:s3cr%40t@proxy.lab:3128",
        "omero_pip_index_url": "http://devpi.lab:3141/root/pypi/+simple/",
        "omero_extra_ca_certificates": [LocalFile("a/lab-ca.pem", CERTIFICATE),
                                        LocalFile("b/proxy-ca.crt", CERTIFICATE)]},
    "json-settings": {
        "omero_web_config": {"omero.web.ui.top_links": TOP_LINKS, "omero.web.public.enabled": True},
        "omero_server_config": {"omero.jvmcfg.percent.blitz": 50, "omero.ldap.config": False}},
}


# What each reaches the host's files as: parsed (normalised, JSON), not as typed.
WRITTEN = {
    "ipv6": r"listen\s+\[::\]:80\b",
    "names-and-paths": r"(?m)omero\.data\.dir\W+/srv/omero/data\W*$",
    "json-settings": r"omero\.ldap\.config\W+false\b",
}


@pytest.mark.parametrize("name", PLANNED)
def test_good_values_planned(deploy, tmp_path, name):
    data = {key: made(value, tmp_path) for key, value in PLANNED[name].items()}
    uploads = deploy({"aio": (ALL_ROLES, data)})["aio"].uploads.values()
    assert any(re.search(WRITTEN[name], text) for text in uploads)


def test_defaults_and_examples_pass(tmp_path):
    ca = LocalFile("proxy-ca.crt", CERTIFICATE).make(tmp_path)
    checks.parse_options(dict(DEFAULTS), UBUNTU, "aio")
    for option in OPTIONS:
        # The example CA certificate stands for a file at the site: one of the same name here.
        example = [ca] if option.name == "omero_extra_ca_certificates" else option.good_value
        checks.parse_options({**DEFAULTS, option.name: example}, UBUNTU, "aio")


@pytest.mark.parametrize("path", sorted((ROOT / "inventories").glob("*.py")), ids=lambda p: p.stem)
def test_example_inventory_passes(path, tmp_path):
    for value in runpy.run_path(str(path)).values():
        for entry in value if isinstance(value, list) else ():
            name, data = entry if isinstance(entry, tuple) else (entry, {})
            options = {key: value for key, value in data.items() if key.startswith("omero_")}
            if "omero_extra_ca_certificates" in options:  # the site's files: stand-ins here
                options["omero_extra_ca_certificates"] = [
                    LocalFile(Path(ca).name, CERTIFICATE).make(tmp_path)
                    for ca in options["omero_extra_ca_certificates"]]
            checks.parse_options({**DEFAULTS, **options}, UBUNTU, name)
            assert topology.address_of(SimpleNamespace(name=name, data=data))


class _Data(dict):
    def dict(self) -> dict:
        return dict(self)


def load(data: dict, groups=("omero_web",)) -> settings.Settings:
    """settings.load() for a lone host (web only: no artifacts or passwords needed)."""
    host = SimpleNamespace(name="@fake/web", groups=groups, data=_Data(data))
    inventory = SimpleNamespace(get_group=lambda group, default: [host] if group in groups else default)
    return settings.load(host, inventory, UBUNTU, pid1="systemd")


def test_paths_named_once_on_the_settings():
    config = load({})
    assert (config.server_venv, config.server_omero, config.server_config_dir,
            config.server_download_dir, config.server_symlink, config.server_home) == (
        "/opt/omero/server/venv3", "/opt/omero/server/venv3/bin/omero", "/opt/omero/server/config",
        "/opt/omero/server/downloads", "/opt/omero/server/OMERO.server", "/var/lib/omero-server")
    assert (config.web_venv, config.web_omero, config.web_gunicorn, config.web_config_dir,
            config.web_omerodir, config.web_static_root, config.web_home) == (
        "/opt/omero/web/venv3", "/opt/omero/web/venv3/bin/omero", "/opt/omero/web/venv3/bin/gunicorn",
        "/opt/omero/web/config", "/opt/omero/web/OMERO.web", "/opt/omero/web/OMERO.web/var/static",
        "/var/lib/omero-web")
    assert config.download_dir == "/opt/omero/downloads"
    assert (config.web_bind, config.web_url) == (Endpoint("127.0.0.1", 4080), "http://127.0.0.1:4080")
    assert (config.nginx_listen, config.nginx_url) == (Endpoint(None, 80), "http://127.0.0.1:80")


def test_values_parsed_once():
    config = load({
        "omero_web_bind": "[0:0::1]:04080", "omero_nginx_listen": 8080,
        "omero_web_basedir": "/srv//omero/./web/", "omero_web_user": "omeroweb",
        "omero_secrets_dir": "~/omero//secrets/", "omero_nginx_server_name": "a.lab  *.lab",
        "omero_web_config": {"omero.web.ui.top_links": TOP_LINKS, "omero.web.debug": True},
        "omero_server_config": {"omero.ldap.config": False, "omero.mail.from": "o@lab"},
    })
    assert config.web_bind == Endpoint("::1", 4080)
    assert str(config.web_bind) == "[::1]:4080"
    assert config.web_url == "http://[::1]:4080"
    assert (config.nginx_listen, str(config.nginx_listen)) == (Endpoint(None, 8080), "8080")
    assert config.web_basedir == "/srv/omero/web"
    assert config.web_static_root == "/srv/omero/web/OMERO.web/var/static"
    assert config.web_home == "/var/lib/omeroweb"
    assert config.secrets_dir == "~/omero/secrets"
    assert str(config.nginx_server_name) == "a.lab *.lab"
    assert (config.server_names, config.any_host) == (("a.lab", "*.lab"), False)
    # OMERO settings as the text written: JSON unless a string.
    assert config.web_config == {"omero.web.ui.top_links": json.dumps(TOP_LINKS),
                                 "omero.web.debug": "true"}
    assert config.server_config == {"omero.ldap.config": "false", "omero.mail.from": "o@lab"}


@pytest.mark.parametrize("listen, url", [("[::]:8080", "http://[::1]:8080"),
                                         ("0.0.0.0:80", "http://127.0.0.1:80"),
                                         ("10.0.0.5:443", "http://10.0.0.5:443")])
def test_nginx_reached_from_its_host(listen, url):
    assert load({"omero_nginx_listen": listen}).nginx_url == url


def test_the_platforms_nginx_user_is_refused():
    apache_like = Platform("Example 1", "rhel", "python3", 16, 17, "httpd", (1, 20), 22)
    with pytest.raises(OmeroOptionError, match="option omero_web_user .*'httpd' is nginx's user on Example 1"):
        checks.parse_options({**DEFAULTS, "omero_web_user": "httpd"}, apache_like, "web")


def test_peer_address_is_checked(deploy):
    with pytest.raises(OmeroOptionError, match=r"option omero_address \(host @fake/db\): holds ' '"):
        deploy({"db": (("omero_database",), {"omero_address": "db host"}),
                "server": (("omero_server",), {"omero_address": "10.0.0.12"})}, execute=False)


def test_ssh_host_name_must_be_an_address():
    with pytest.raises(OmeroDeployError, match="host omero lab: its name is not an address .*set its omero_address"):
        topology.address_of(SimpleNamespace(name="omero lab", data={}))
    assert topology.address_of(SimpleNamespace(name="db.lab.example.org", data={})) == "db.lab.example.org"
    assert topology.address_of(SimpleNamespace(name="db", data={"omero_address": "2001:DB8::1"})) == "2001:db8::1"


@pytest.mark.parametrize("url", ["http://alice:s3cr3t@proxy.lab:99999",
                                 "http://alice:s3cr3t;@proxy.lab:3128",
                                 "ftp://alice:s3cr3t@proxy.lab:3128"])
def test_proxy_credentials_never_in_a_message(url):
    with pytest.raises(OmeroOptionError) as caught:
        checks.parse_options({**DEFAULTS, "omero_http_proxy": url}, UBUNTU, "aio")
    assert "s3cr3t" not in str(caught.value)


# -- docs/malformed-input.md ---------------------------------------------------------------

DOC = ROOT / "docs" / "malformed-input.md"
DOC_HOST = "omero.lab.example.org"
# The local files the table's CA certificate rows name, relative to where pyinfra runs.
DOC_FILES = {"notes.txt": "not a certificate\n", "lab-ca.pem": CERTIFICATE,
             "key-and-ca.pem": CERTIFICATE + PRIVATE_KEY,
             "site-a/lab-ca.pem": CERTIFICATE, "site-b/lab-ca.crt": CERTIFICATE}


def doc_rows() -> list:
    """(option, value, message) of each row: ``| class | `` option = value `` | `` message `` |``."""
    rows = re.findall(r"^\| [^|]+ \| `` (omero_\w+) = (.+?) `` \| `` (.+?) `` \|$", DOC.read_text(), re.MULTILINE)
    return [pytest.param(option, ast.literal_eval(value), message, id=f"{option}={value}"[:60])
            for option, value, message in rows]


def test_the_table_covers_every_class():
    assert len(doc_rows()) >= 40


@pytest.mark.parametrize("option, value, message", doc_rows())
def test_the_table_says_what_the_deploy_says(deploy, tmp_path, monkeypatch, option, value, message):
    for name, text in DOC_FILES.items():
        LocalFile(name, text).make(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OmeroOptionError) as caught:
        deploy({"aio": (ALL_ROLES, {option: value})}, execute=False)
    assert str(caught.value).replace("@fake/aio", DOC_HOST) == message


@pytest.mark.parametrize(("certificate_names", "name", "covered"), [
    (["omero.lab.org"], "omero.lab.org", True),
    (["*.lab.org"], "omero.lab.org", True),
    (["*.lab.org"], "lab.org", False),  # a wildcard stands for one label, not none
    (["*.lab.org"], "a.omero.lab.org", False),  # nor two
    (["*.lab.org"], "*.lab.org", True),
    (["omero.lab.org"], "*.lab.org", False),
    (["10.0.0.5"], "10.0.0.5", True),
    (["*.0.0.5"], "10.0.0.5", True),  # sorted out by the grammar: server names are names or IPv4
    ([], "omero.lab.org", False),
])
def test_certificate_covers(certificate_names, name, covered):
    assert checks.covers(certificate_names, name) == covered


def _web_settings(**data):
    host = SimpleNamespace(name="web", data=SimpleNamespace(dict=lambda: data, get=data.get), groups=["omero_web"])
    inventory = SimpleNamespace(get_group=lambda group, default: default)
    return settings.load(host, inventory, UBUNTU, pid1="systemd")


@pytest.mark.parametrize(("data", "command"), [
    ({}, "curl -gfsk -o /dev/null http://127.0.0.1:80/x"),
    ({"omero_nginx_server_name": "omero.lab _"}, "curl -gfsk -o /dev/null http://127.0.0.1:80/x"),
    ({"omero_nginx_server_name": "omero.lab"},
     "curl -gfsk -o /dev/null --resolve omero.lab:80:127.0.0.1 http://omero.lab:80/x"),
    ({"omero_nginx_server_name": "*.lab", "omero_nginx_tls": "self-signed", "omero_nginx_https_listen": "[::]:8443"},
     "curl -gfsk -o /dev/null --resolve 'check.lab:8443:[::1]' https://check.lab:8443/x"),
    ({"omero_nginx_tls": "acme", "omero_nginx_https_listen": "10.0.0.5:443"},
     "curl -gfsk -o /dev/null https://10.0.0.5:443/x"),
])
def test_nginx_checked_from_its_host_as_a_browser_would(data, command):
    assert _web_settings(**data).nginx_check("/x") == command


def test_nginx_checked_for_a_status():
    assert _web_settings(omero_nginx_server_name="omero.lab").nginx_check("/x", 503) == (
        "curl -gsk -o /dev/null -w '%{http_code}' --resolve omero.lab:80:127.0.0.1 http://omero.lab:80/x "
        "| grep -qx 503")


@pytest.mark.parametrize(("data", "allowed", "origins"), [
    ({}, ("*",), ()),
    ({"omero_nginx_server_name": "omero.lab *.omero.lab"}, ("omero.lab", ".omero.lab"),
     ("http://omero.lab", "http://*.omero.lab")),
    ({"omero_nginx_server_name": "omero.lab _", "omero_nginx_tls": "self-signed"}, ("*",), ("https://omero.lab",)),
    ({"omero_nginx_server_name": "omero.lab", "omero_nginx_tls": "acme", "omero_nginx_https_listen": 8443},
     ("omero.lab",), ("https://omero.lab:8443",)),
])
def test_omero_web_hosts_and_origins(data, allowed, origins):
    parsed = _web_settings(**data)
    assert (parsed.web_allowed_hosts, parsed.site_origins) == (allowed, origins)
