"""OMERO.server for real: runs only when the site's artifacts are supplied.

The server zip and Glencoe's Ice binaries cannot be downloaded on every machine, so these
tests take them from OMERO_SERVER_ZIP and OMERO_ICE_TARBALL (local paths) and are skipped,
with that reason, without them.
"""

import os
from pathlib import Path

import pytest

from .audit import assert_clean
from .testhosts import SUBNET, SystemdHost, deployed, hosts_with_changes, sha256_of

SERVER_ZIP = os.environ.get("OMERO_SERVER_ZIP")
ICE_TARBALL = os.environ.get("OMERO_ICE_TARBALL")

pytestmark = pytest.mark.skipif(
    not (SERVER_ZIP and ICE_TARBALL),
    reason="needs a real OMERO.server zip and Ice 3.6.5 tarball: set OMERO_SERVER_ZIP and "
           "OMERO_ICE_TARBALL to their paths",
)
OMERO = "OMERODIR=/opt/omero/server/OMERO.server /opt/omero/server/venv3/bin/omero"


@pytest.fixture(scope="module")
def server_host(tmp_path_factory, secrets_dir):
    with deployed(SystemdHost("server", f"{SUBNET}.50"),
                  ["omero_database", "omero_server", "omero_web"],
                  tmp_path_factory.mktemp("server"), secrets_dir,
                  omero_server_artifact=SERVER_ZIP,
                  omero_server_sha256=sha256_of(Path(SERVER_ZIP)),
                  omero_ice_artifact=ICE_TARBALL,
                  omero_ice_sha256=sha256_of(Path(ICE_TARBALL))) as host:
        yield host


def as_server_user(host, command: str):
    return host.run(f"su omero-server -s /bin/sh -c '{command}'")


def root_password(secrets_dir: Path) -> str:
    (secret,) = secrets_dir.glob("*-omero-root")
    return secret.read_text().strip()


def test_server_running_and_diagnostics(server_host):
    assert server_host.testinfra.service("omero-server.service").is_running
    assert "OMERO.blitz" in as_server_user(server_host, f"{OMERO} admin diagnostics").stdout
    data_dir = server_host.testinfra.file("/OMERO/ManagedRepository")
    assert (data_dir.user, data_dir.group, data_dir.mode) == ("omero-server", "omero", 0o2770)


def test_root_login_and_fake_import(server_host, secrets_dir):
    password = root_password(secrets_dir)
    as_server_user(server_host, f"{OMERO} login -s localhost -u root -w {password}")
    as_server_user(server_host, "touch /tmp/test\\&sizeX=64\\&sizeY=64.fake")
    imported = as_server_user(server_host, f"{OMERO} import /tmp/test\\&sizeX=64\\&sizeY=64.fake")
    assert "Image:" in imported.stdout + imported.stderr


def test_second_run_changes_nothing(server_host):
    assert hosts_with_changes(server_host.inventory) == {}


def test_glacier2_tls_with_the_deploys_certificate(server_host, secrets_dir):
    """Clients' TLS port presents the deploy's certificate, whose store has the site's password."""
    presented = server_host.run("openssl s_client -connect 127.0.0.1:4064 </dev/null 2>/dev/null "
                                "| openssl x509 -noout -subject").stdout
    assert "CN = OMERO.server" in presented
    store = server_host.testinfra.file("/var/lib/omero-server/certs/server.p12")
    assert (store.user, store.mode) == ("omero-server", 0o600)
    (password_file,) = secrets_dir.glob("*-omero-certificate")
    password = as_server_user(server_host, f"{OMERO} config get omero.glacier2.IceSSL.Password").stdout.strip()
    assert password == password_file.read_text().strip() != "secret"


def test_permission_audit(server_host, secrets_dir):
    """After the server's own starts (its rewrite of config.xml) too."""
    assert_clean(server_host, secrets_dir)
