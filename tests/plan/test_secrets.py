"""Passwords: generated and kept on the machine running pyinfra, never on a command line."""

import re
import shlex
import stat

import pytest

from deploys.errors import OmeroOptionError
from deploys.scram import scram_matches

from .conftest import ALL_ROLES

pytestmark = pytest.mark.plan


@pytest.fixture(scope="module")
def generated(deploy, tmp_path_factory):
    secrets = tmp_path_factory.mktemp("generated-secrets")
    data = {"omero_secrets_dir": str(secrets)}
    runs = deploy({"db": (("omero_database",), {"omero_address": "10.0.0.11", **data}),
                   "app": (("omero_server", "omero_web"), {"omero_address": "10.0.0.12", **data})})
    return secrets, runs


def kept(secrets, suffix: str) -> str:
    [path] = [path for path in secrets.iterdir() if path.name.endswith(suffix)]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return path.read_text().strip()


def test_db_password_never_sent_in_a_command(generated):
    secrets, runs = generated
    password = kept(secrets, "-db-omero")
    for run in runs.values():
        assert not [c for c in run.commands + run.raw_commands if password in c]
    # PostgreSQL gets only a SCRAM verifier of it...
    [create] = [c for c in runs["db"].raw_commands if 'CREATE ROLE "omero" LOGIN PASSWORD' in c]
    assert scram_matches(password, re.search(r"SCRAM-SHA-256\$[^'\"]+", create).group(0))
    # ...and the server host, deployed separately, the same password, in its files only.
    app = runs["app"]
    assert app.uploads["/var/lib/omero-server/.pgpass"] == f"10.0.0.11:5432:omero:omero:{password}\n"
    config = app.uploads["/opt/omero/server/config/00-omero-server.omero"]
    assert f"config set -- omero.db.pass {shlex.quote(password)}\n" in config


def test_root_password_masked_in_what_pyinfra_shows(generated):
    secrets, runs = generated
    root_password = kept(secrets, "-omero-root")
    [script] = [c for c in runs["app"].commands if " db script " in c]
    assert "--password '*MASKED*'" in script
    assert not [c for c in runs["app"].commands if root_password in c]


def test_no_secret_in_diff_output(deploy, tmp_path, caplog):
    """--diff shows what files change; never the ones holding a password or proxy credentials."""
    password, proxy_secret = "db-password-for-diff-test", "proxy-secret-for-diff-test"
    mail_password, ldap_password = "web-mail-password-for-diff-test", "ldap-password-for-diff-test"
    data = {"omero_db_password": password, "omero_secrets_dir": str(tmp_path),
            "omero_http_proxy": f"http://lab:{proxy_secret}@proxy.lab:3128",
            "omero_web_config": {"omero.web.email_host_password": mail_password},
            "omero_server_config": {"omero.ldap.password": ldap_password},
            # Downloaded with curl, through the proxy.
            "omero_icepy_wheel": "https://wheels.lab/zeroc_ice-3.6.5-cp312-cp312-manylinux_2_28_x86_64.whl",
            "omero_icepy_wheel_sha256": "0" * 64}
    with caplog.at_level("DEBUG"):
        runs = deploy({"aio": (ALL_ROLES, data)}, diff=True)
    shown = caplog.text
    assert "Will create" in shown  # the diff was on, for the files without secrets
    for secret in (password, proxy_secret, mail_password, ldap_password):
        assert secret not in shown
    run = runs["aio"]
    downloads = [c for c in run.raw_commands if "curl" in c and "zeroc_ice" in c]
    assert downloads and all("--config /var/lib/omero-pyinfra/curl-proxy.conf" in c for c in downloads)
    assert not [c for c in run.raw_commands if proxy_secret in c]
    uploads = run.uploads
    assert password in uploads["/var/lib/omero-server/.pgpass"]
    assert proxy_secret in uploads["/opt/omero/web/venv3/pip.conf"]
    assert proxy_secret in uploads["/etc/apt/apt.conf.d/80omero-proxy"]
    assert uploads["/var/lib/omero-pyinfra/curl-proxy.conf"] == f'proxy = "http://lab:{proxy_secret}@proxy.lab:3128"\n'
    assert mail_password in uploads["/opt/omero/web/config/01-omero-web.omero"]
    assert ldap_password in uploads["/opt/omero/server/config/00-omero-server.omero"]


@pytest.mark.parametrize("option", ["omero_db_password", "omero_root_password"])
@pytest.mark.parametrize("password", ["omero", "OMERO", "changeme", "password"])
def test_well_known_password_refused(deploy, option, password):
    with pytest.raises(OmeroOptionError, match=f"option {option} .*too weak"):
        deploy({"aio": (ALL_ROLES, {option: password})}, execute=False)


def test_certificate_store_password_generated_and_given_to_openssl_in_a_file(deploy, tmp_path):
    """Glacier2's PKCS#12 store gets the site's own password (omero-certificates' is the
    well-known "secret"): in the server's config and a 0600 file, never on a command line."""
    # A fresh host: no store yet, so the ChangedSince fact names the password file.
    no_store = {re.compile(r"certs/server\.p12\b"): ["/var/lib/omero-server/.certificate-password"]}
    run = deploy({"aio": (ALL_ROLES, {"omero_secrets_dir": str(tmp_path)})}, responses=no_store)["aio"]
    password = kept(tmp_path, "-omero-certificate")
    assert not [c for c in run.commands + run.raw_commands if password in c]
    assert run.uploads["/var/lib/omero-server/.certificate-password"] == password + "\n"
    config = run.uploads["/opt/omero/server/config/00-omero-server.omero"]
    assert f"config set -- omero.glacier2.IceSSL.Password {shlex.quote(password)}\n" in config
    assert "config set -- omero.glacier2.IceSSL.DefaultDir /var/lib/omero-server/certs\n" in config
    [store] = [c for c in run.raw_commands if "openssl pkcs12 -export" in c]
    assert "-passout file:/var/lib/omero-server/.certificate-password" in store
    assert "runuser -u omero-server" in store
    # openssl is installed to make it.
    assert any(" install " in c and " openssl" in c and "postgresql" in c for c in run.commands)


def test_certificate_store_left_alone_once_made(deploy, tmp_path):
    run = deploy({"aio": (ALL_ROLES, {"omero_secrets_dir": str(tmp_path)})})["aio"]
    assert not [c for c in run.raw_commands if "openssl pkcs12" in c or "openssl req" in c]
