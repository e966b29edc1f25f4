"""Read-only OMERO.server nodes for real (README "Read-only servers"): runs only when the
site's artifacts are supplied (OMERO_SERVER_ZIP, OMERO_ICE_TARBALL, as for
test_server_runtime.py) and this machine's kernel can serve NFS to its test hosts;
skipped with the reason otherwise. tests/plan/test_readonly.py plans the same site on every
run.

A database, the read-write server (exporting the repository), two read-only servers
(mounting it), the balancer and a web host, deployed in one run.
"""

import os
from pathlib import Path

import pytest

from .testhosts import SUBNET, SystemdHost, deployed_together, hosts_with_changes, sha256_of

SERVER_ZIP = os.environ.get("OMERO_SERVER_ZIP")
ICE_TARBALL = os.environ.get("OMERO_ICE_TARBALL")
KERNEL_NFS = "nfsd" in Path("/proc/filesystems").read_text()

pytestmark = [
    pytest.mark.skipif(not (SERVER_ZIP and ICE_TARBALL),
                       reason="needs a real OMERO.server zip and Ice 3.6.5 tarball: set OMERO_SERVER_ZIP and "
                              "OMERO_ICE_TARBALL to their paths"),
    pytest.mark.skipif(not KERNEL_NFS, reason="this machine's kernel serves no NFS (no nfsd in /proc/filesystems): "
                                              "the read-only servers mount the repository over NFS"),
]
OMERO = "OMERODIR=/opt/omero/server/OMERO.server /opt/omero/server/venv3/bin/omero"
# The web host's omero-py, as a client of the balancer.
CLIENT = "HOME=/var/lib/omero-web /opt/omero/web/venv3/bin/omero"
GID = 546
FAKE = "/tmp/readonly\\&sizeX=64\\&sizeY=64.fake"


@pytest.fixture(scope="module")
def site(tmp_path_factory, secrets_dir):
    hosts = {role: SystemdHost(f"readonly-{role}", f"{SUBNET}.{220 + n}")
             for n, role in enumerate(("db", "rw", "ro1", "ro2", "lb", "web"))}
    artifacts = {"omero_server_artifact": SERVER_ZIP, "omero_server_sha256": sha256_of(Path(SERVER_ZIP)),
                 "omero_ice_artifact": ICE_TARBALL, "omero_ice_sha256": sha256_of(Path(ICE_TARBALL)),
                 "omero_group_gid": GID}
    groups = {"omero_database": [hosts["db"]], "omero_server": [hosts["rw"]],
              "omero_server_readonly": [hosts["ro1"], hosts["ro2"]], "omero_ice_balancer": [hosts["lb"]],
              "omero_web": [hosts["web"]]}
    with deployed_together("readonly", groups, tmp_path_factory.mktemp("readonly"), secrets_dir,
                           {name: artifacts for name in ("readonly-rw", "readonly-ro1", "readonly-ro2")}):
        yield hosts


def as_server_user(host, command: str):
    return host.run(f"su omero-server -s /bin/sh -c '{command}'")


def root_password(secrets_dir: Path) -> str:
    (secret,) = secrets_dir.glob("*readonly-rw-omero-root")
    return secret.read_text().strip()


def test_readonly_servers_read_the_repository_and_cannot_write_it(site):
    for name in ("ro1", "ro2"):
        host = site[name]
        assert "ro" in host.run("findmnt -n -o OPTIONS /OMERO").stdout.split(",")
        # Read as the server (its group's number is the read-write host's), written by no one.
        as_server_user(host, "ls /OMERO/ManagedRepository")
        assert host.run("touch /OMERO/written-by-root", check=False).returncode != 0
        assert host.testinfra.service("omero-server.service").is_running
        assert as_server_user(host, f"{OMERO} config get omero.cluster.read_only.db").stdout.strip() == "true"


def as_web_user(host, command: str):
    """The web host's omero-py CLI (no OMERO.server there), as its service user."""
    return host.run(f"runuser -u omero-web -- sh -c '{command}'")


def test_what_is_imported_on_the_readwrite_server_is_read_through_the_balancer(site, secrets_dir):
    password = root_password(secrets_dir)
    rw, web = site["rw"], site["web"]
    as_server_user(rw, f"{OMERO} login -s localhost -u root -w {password}")
    as_server_user(rw, f"touch {FAKE}")
    imported = as_server_user(rw, f"{OMERO} import {FAKE}")
    assert "Image:" in imported.stdout + imported.stderr
    as_web_user(web, f"{CLIENT} login -s {site['lb'].address} -p 4064 -u root -w {password}")
    images = as_web_user(web, f"{CLIENT} hql -q --style plain \"select count(i) from Image i\"").stdout
    assert int(images.strip().split(",")[-1]) >= 1


def test_writes_are_refused_through_the_balancer_and_made_on_the_readwrite_server(site, secrets_dir):
    password = root_password(secrets_dir)
    web = site["web"]
    new_dataset = f"{CLIENT} obj new Dataset name=readonly-check"
    as_web_user(web, f"{CLIENT} login -s {site['lb'].address} -p 4064 -u root -w {password}")
    refused = web.run(f"runuser -u omero-web -- sh -c '{new_dataset}'", check=False)
    assert refused.returncode != 0, refused.stdout
    # The same write, to the read-write server, is made: what was refused was the node's.
    as_web_user(web, f"{CLIENT} login -s {site['rw'].address} -p 4064 -u root -w {password}")
    assert "Dataset:" in as_web_user(web, new_dataset).stdout


def test_web_offers_the_readonly_servers(site):
    listed = as_web_user(site["web"], f"OMERODIR=/opt/omero/web/OMERO.web {CLIENT} config get "
                                      "omero.web.server_list").stdout
    assert site["lb"].address in listed and "omero-readonly" in listed


def test_second_run_changes_nothing(site):
    assert hosts_with_changes(site["db"].inventory) == {}
