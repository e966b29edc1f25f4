"""HTTPS and web apps, planned for every supported OS on fake hosts: what nginx, OMERO.web
and OMERO.server would be given, and the certificates refused before any host changes."""

import datetime
import re

import pytest

from deploys.errors import OmeroOptionError
from tests.certificates import CertificateAuthority

from .conftest import ALL_ROLES
from .harness import SUPPORTED_OSES, VENV_LISTING, unbatched, venv_listing

pytestmark = pytest.mark.plan

NAME = "omero.lab.example.org"
SITE = "/etc/nginx/conf.d/omero-web.conf"
WEB_CONFIG = "/opt/omero/web/config/01-omero-web.omero"
SELF_SIGNED = "Make the site's self-signed certificate when due"
# Answers of the facts the self-signed certificate is decided from.
ADDRESSES = {re.compile(r"^hostname -I"): ["10.0.0.5 fd00::5"]}


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CertificateAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def given(ca):
    chain, key, _ = ca.issue("site", [NAME])
    return {"omero_nginx_server_name": NAME, "omero_nginx_tls_certificate": str(chain),
            "omero_nginx_tls_key": str(key)}


@pytest.mark.parametrize("os_name", SUPPORTED_OSES)
def test_given_certificate_served_with_modern_tls_only(deploy, given, os_name):
    run = deploy({"web": (("omero_web",), given)}, os_name=os_name)["web"]
    site = run.uploads[SITE]
    assert site.count("ssl_protocols TLSv1.2 TLSv1.3;") == 2  # the site and the refusing default server
    assert "ssl_certificate /etc/nginx/omero-tls/site.crt;" in site
    assert 'add_header Strict-Transport-Security "max-age=63072000" always;' in site
    assert "return 301 https://$host$request_uri;" in site
    # nginx's version on no page, and every request for another name closed unanswered.
    assert site.count("server_tokens off;") == site.count("server {") == 4
    assert "client_max_body_size 200m;" in site
    catch_all = [block for block in site.split("server {") if "default_server" in block]
    assert len(catch_all) == 2 and all("return 444;" in block for block in catch_all)
    # Unknown names: refused before a certificate is shown where nginx can (1.19.4+).
    assert ("ssl_reject_handshake on;" in site) == (os_name != "ubuntu22.04")
    http2_on = os_name == "debian13"
    assert ("http2 on;" in site) == http2_on and ("ssl http2;" in site) == (not http2_on)
    # The key travels as a secret (0600 from the start), the chain as a file.
    assert run.uploads["/etc/nginx/omero-tls/site.key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert "Install the site's private key" in run.ops


def test_omero_web_configured_for_https_behind_nginx(deploy, given):
    config = deploy({"web": (("omero_web",), given)})["web"].uploads[WEB_CONFIG]
    for line in ("config set omero.web.session_cookie_secure true",
                 "config set omero.web.csrf_cookie_secure true",
                 "config set -- omero.web.secure_proxy_ssl_header '[\"HTTP_X_FORWARDED_PROTO\", \"https\"]'",
                 f"config set -- omero.web.allowed_hosts '[\"{NAME}\"]'",
                 f"config set -- omero.web.csrf_trusted_origins '[\"https://{NAME}\"]'"):
        assert line in config.splitlines(), line


def test_http_site_answers_any_name_by_default(deploy):
    run = deploy({"web": (("omero_web",), {})})["web"]
    site, config = run.uploads[SITE], run.uploads[WEB_CONFIG]
    assert "ssl" not in site and "return 444" not in site
    assert "listen 80 default_server;" in site
    assert "config set -- omero.web.allowed_hosts '[\"*\"]'" in config.splitlines()
    assert "cookie_secure" not in config


def test_other_https_port_in_redirect_and_origins(deploy, given):
    data = {**given, "omero_nginx_https_listen": 8443, "omero_nginx_listen": 8080,
            "omero_nginx_server_name": f"{NAME} *.omero.lab.example.org"}
    with pytest.raises(OmeroOptionError, match="is not for \\*.omero.lab.example.org"):
        deploy({"web": (("omero_web",), data)}, execute=False)
    run = deploy({"web": (("omero_web",), {**data, "omero_nginx_server_name": NAME})})["web"]
    assert "return 301 https://$host:8443$request_uri;" in run.uploads[SITE]
    assert f'["https://{NAME}:8443"]' in run.uploads[WEB_CONFIG]


def test_self_signed_made_for_names_and_addresses(deploy):
    data = {"omero_nginx_tls": "self-signed", "omero_nginx_server_name": NAME, "omero_address": "10.0.0.5"}
    run = deploy({"web": (("omero_web",), data)}, responses=ADDRESSES)["web"]
    [made] = [c for c in run.raw_commands if "openssl req -x509" in c]
    assert "subjectAltName=DNS:omero.lab.example.org,IP:10.0.0.5,IP:fd00::5" in made
    assert "-days 397" in made and "CA:FALSE" in made
    assert "openssl" in [c for c in unbatched(run.raw_commands) if "apt-get" in c and "nginx" in c][0]


def _certificate_answer(not_after: datetime.datetime, names: str, key: str = "match") -> dict:
    return {re.compile(r"openssl x509 -in /etc/nginx/omero-tls/site.crt -noout -enddate"): [
        f"notAfter={not_after:%b %d %H:%M:%S %Y} GMT", "X509v3 Subject Alternative Name: ",
        f"    {names}", f"key={key}"]}


@pytest.mark.parametrize("days_left, names, key, made", [
    (300, "DNS:omero.lab.example.org, IP Address:10.0.0.5, IP Address:FD00:0:0:0:0:0:0:5", "match", False),
    (20, "DNS:omero.lab.example.org, IP Address:10.0.0.5, IP Address:FD00:0:0:0:0:0:0:5", "match", True),
    (300, "DNS:old.lab.example.org, IP Address:10.0.0.5, IP Address:FD00:0:0:0:0:0:0:5", "match", True),
    (300, "DNS:omero.lab.example.org, IP Address:10.0.0.5, IP Address:FD00:0:0:0:0:0:0:5", "mismatch", True),
])
def test_self_signed_kept_until_due(deploy, days_left, names, key, made):
    not_after = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days_left)
    data = {"omero_nginx_tls": "self-signed", "omero_nginx_server_name": NAME, "omero_address": "10.0.0.5"}
    run = deploy({"web": (("omero_web",), data)},
                 responses={**ADDRESSES, **_certificate_answer(not_after, names, key)})["web"]
    assert any("openssl req -x509" in c for c in run.raw_commands) == made


@pytest.mark.parametrize("pid1, reload", [
    ("systemd", "systemctl reload nginx.service"),
    ("bash", "supervisorctl -c /etc/supervisor/supervisord.conf signal HUP nginx"),
])
def test_acme_hook_installs_and_reloads(deploy, pid1, reload):
    data = {"omero_nginx_tls": "acme", "omero_nginx_server_name": NAME}
    run = deploy({"web": (("omero_web",), data)}, pid1=pid1, responses=ADDRESSES)["web"]
    hook = run.uploads["/usr/local/sbin/omero-tls-renewed"]
    assert reload in hook.splitlines() and "nginx -t -q" in hook
    assert "location /.well-known/acme-challenge/ {\n        root /var/www/omero-acme;" in run.uploads[SITE]
    assert "Reload nginx for its new configuration" in run.ops


def test_web_apps_installed_and_registered(deploy):
    apps = ["omero-figure", "omero-iviewer==0.18.0", "omero-parade", "omero-mapr"]
    run = deploy({"web": (("omero_web",), {"omero_web_apps": apps})})["web"]
    [install] = [c for c in run.raw_commands if "omero-web==" in c and "pip" in c]
    for pinned in ("omero-figure==8.0.1", "omero-iviewer==0.18.0", "omero-parade==0.2.4", "omero-mapr==0.5.3"):
        assert pinned in install
    config = run.uploads[WEB_CONFIG].splitlines()
    assert config.index("config drop default") == 1  # the files are the whole configuration
    for module in ("omero_figure", "omero_iviewer", "omero_parade", "omero_mapr"):
        assert f"config append -- omero.web.apps '\"{module}\"'" in config
    assert "config set omero.web.viewer.view omero_iviewer.views.index" in config


def test_removed_app_uninstalled_and_its_files_gone(deploy):
    installed = {VENV_LISTING: venv_listing("/opt/omero/web/venv3", ["omero-parade==0.2.4", "omero-web==5.33.2"])}
    run = deploy({"web": (("omero_web",), {"omero_web_apps": ["omero-figure"]})}, responses=installed)["web"]
    [uninstall] = [c for c in run.raw_commands if "uninstall" in c]
    assert "omero-parade" in uninstall and "omero-figure" not in uninstall
    assert "Remove the static files of the OMERO.web apps not in omero_web_apps" in run.ops
    assert "omero_parade" not in run.uploads[WEB_CONFIG]


def test_figure_export_on_the_server(deploy):
    # The venv changed since the script was last installed (the ChangedSince fact).
    newer = {re.compile(r"omero-figure-server-script\.done"): ["/opt/omero/server/venv3/lib/python3.12/site-packages"]}
    run = deploy({"aio": (ALL_ROLES, {"omero_web_apps": ["omero-figure"]})}, responses=newer)["aio"]
    [server_install] = [c for c in run.raw_commands if "server/venv3/bin/pip" in c and "omero-py==" in c]
    assert all(package in server_install for package in ("reportlab", "markdown", "omero-figure==8.0.1"))
    [script] = [c for c in run.raw_commands if "Figure_To_Pdf.py" in c and c.startswith("install")]
    assert "lib/scripts/omero/figure_scripts/Figure_To_Pdf.py" in script
    # Official scripts are registered at start: the server restarts for a new one.
    assert run.ops.index("Install omero-figure's server script") < run.ops.index("Run and enable omero-server")


def test_no_figure_script_without_figure(deploy):
    run = deploy({"aio": (ALL_ROLES, {})})["aio"]
    assert "Remove omero-figure's server script" in run.ops
    assert not any("reportlab" in c for c in run.raw_commands)


# -- certificates refused before any host changes ---------------------------------------

def _refused(deploy, data, option, problem):
    with pytest.raises(OmeroOptionError) as error:
        deploy({"web": (("omero_web",), data)}, execute=False)
    assert error.value.option == option and re.search(problem, str(error.value)), str(error.value)


def test_certificate_for_another_name_refused(deploy, ca):
    chain, key, _ = ca.issue("other", ["other.lab.example.org"])
    _refused(deploy, {"omero_nginx_server_name": NAME, "omero_nginx_tls_certificate": str(chain),
                      "omero_nginx_tls_key": str(key)},
             "omero_nginx_tls_certificate", f"is not for {NAME} \\(it names other.lab.example.org\\)")


def test_wildcard_certificate_covers_one_label(deploy, ca):
    chain, key, _ = ca.issue("wildcard", ["*.lab.example.org"])
    data = {"omero_nginx_tls_certificate": str(chain), "omero_nginx_tls_key": str(key)}
    deploy({"web": (("omero_web",), {**data, "omero_nginx_server_name": NAME})}, execute=False)
    _refused(deploy, {**data, "omero_nginx_server_name": "a.omero.lab.example.org"},
             "omero_nginx_tls_certificate", "is not for a.omero.lab.example.org")


def test_key_of_another_certificate_refused(deploy, ca, given):
    _, other_key, _ = ca.issue("other-key", [NAME])
    _refused(deploy, {**given, "omero_nginx_tls_key": str(other_key)}, "omero_nginx_tls_key",
             "is not the key of the first certificate")


def test_expired_certificate_refused(deploy, ca):
    chain, key, _ = ca.issue("expired", [NAME], days=-1)
    _refused(deploy, {"omero_nginx_server_name": NAME, "omero_nginx_tls_certificate": str(chain),
                      "omero_nginx_tls_key": str(key)}, "omero_nginx_tls_certificate", "expired on")


def test_encrypted_key_refused(deploy, given, tmp_path):
    from cryptography.hazmat.primitives import serialization

    with open(given["omero_nginx_tls_key"], "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"passphrase")))
    _refused(deploy, {**given, "omero_nginx_tls_key": str(encrypted)}, "omero_nginx_tls_key", "is encrypted")


def test_key_inside_the_certificate_file_refused(deploy, given, tmp_path):
    both = tmp_path / "both.pem"
    with open(given["omero_nginx_tls_certificate"]) as chain, open(given["omero_nginx_tls_key"]) as key:
        both.write_text(chain.read() + key.read())
    _refused(deploy, {**given, "omero_nginx_tls_certificate": str(both)}, "omero_nginx_tls_certificate",
             "holds a private key")


@pytest.mark.parametrize("data, option, problem", [
    ({"omero_nginx_tls_key": "/etc/ssl/site.key"}, "omero_nginx_tls_key", "omero_nginx_tls_certificate is not"),
    ({"omero_nginx_tls": "self-signed", "omero_nginx_https_listen": 80}, "omero_nginx_https_listen",
     "omero_nginx_listen's too"),
    ({"omero_nginx_tls": "letsencrypt"}, "omero_nginx_tls", "must be auto, off, self-signed or acme"),
    ({"omero_web_apps": ["omero-figure", "omero-figure"]}, "omero_web_apps", "listed twice"),
    ({"omero_web_apps": ["omero-fpbioimage"]}, "omero_web_apps", "not an app this deploy knows"),
    ({"omero_web_apps": ["omero-figure==latest"]}, "omero_web_apps", "must be a release like"),
    ({"omero_web_apps": "omero-figure"}, "omero_web_apps", "must be a list"),
    ({"omero_nginx_client_max_body_size": "0"}, "omero_nginx_client_max_body_size", "unlimited"),
    ({"omero_web_request_timeout": True}, "omero_web_request_timeout", "whole number from 10 to 3600"),
    ({"omero_nginx_hsts": "yes"}, "omero_nginx_hsts", "must be True or False"),
])
def test_bad_https_and_app_options_refused(deploy, data, option, problem):
    _refused(deploy, data, option, problem)


def test_given_certificate_with_another_mode_refused(deploy, given):
    _refused(deploy, {**given, "omero_nginx_tls": "self-signed"}, "omero_nginx_tls",
             "leave it 'auto'")
