"""The permission audit's rules (tests/host/audit.py) on listings made up here: each rule
fires on what it is for, and on nothing else."""

import subprocess

import pytest

from tests.host.audit import Expected, Listener, _socket_address, audit

pytestmark = pytest.mark.unit

PASSWD = ["root:x:0:0::/root:/bin/sh", "omero-web:x:998:998::/var/lib/omero-web:/usr/sbin/nologin",
          "omero-server:x:997:997::/var/lib/omero-server:/usr/sbin/nologin", "amy:x:1000:1000::/home/amy:/bin/sh"]
GROUP = ["root:x:0:", "omero-web:x:998:", "omero-server:x:997:", "omero:x:996:omero-server", "amy:x:1000:",
         "users:x:100:"]
BASE = {"/": "755 0 0 d", "/etc": "755 0 0 d", "/etc/systemd": "755 0 0 d", "/etc/systemd/system": "755 0 0 d",
        "/opt": "755 0 0 d", "/opt/omero": "755 0 0 d", "/var": "755 0 0 d", "/var/lib": "755 0 0 d"}
LOOPBACK_5432 = "tcp 0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000 108 0 1"


def run_with(files: dict[str, str], holding: tuple[str, ...] = (), sockets: tuple[str, ...] = ()):
    """A host whose one audit command prints ``files`` ({path: "mode uid gid type"})."""
    records = ["@@passwd", *PASSWD, "@@group", *GROUP, "@@files",
               *(f"{line} {path}" for path, line in {**BASE, **files}.items()),
               "@@holding", *holding, "@@sockets", "tcp sl local_address rem_address st", *sockets, "@@end"]

    def run(command: str) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(command, 0, "\0".join(records) + "\0", "")
    return run


def findings(files, expected: Expected, **kwargs) -> dict[str, str]:
    return {finding.path: finding.why for finding in audit(run_with(files, **kwargs), expected)}


SECRET = Expected(secret_paths={"/var/lib/omero-server"}, root_trusted=set(), listeners=[])


@pytest.mark.parametrize("files, found", [
    ({"/var/lib/omero-server": "700 997 997 d", "/var/lib/omero-server/.pgpass": "644 997 997 f"}, {}),
    ({"/var/lib/omero-server": "755 997 997 d", "/var/lib/omero-server/.pgpass": "600 997 997 f"},
     {"/var/lib/omero-server": "secret, readable by every account"}),
    ({"/var/lib/omero-server": "711 997 997 d", "/var/lib/omero-server/.pgpass": "644 997 997 f"},
     {"/var/lib/omero-server/.pgpass": "secret, readable by every account"}),
    # Its own group, or root's, may read; a group others join may not.
    ({"/var/lib/omero-server": "750 0 997 d", "/var/lib/omero-server/.pgpass": "640 0 997 f"}, {}),
    ({"/var/lib/omero-server": "750 997 996 d", "/var/lib/omero-server/.pgpass": "640 997 996 f"},
     {"/var/lib/omero-server": "secret, readable by the shared group omero",
      "/var/lib/omero-server/.pgpass": "secret, readable by the shared group omero"}),
    # No account's own group, though no member is listed: anyone given it as primary group reads.
    ({"/var/lib/omero-server": "750 997 100 d", "/var/lib/omero-server/.pgpass": "600 997 997 f"},
     {"/var/lib/omero-server": "secret, readable by the shared group users"}),
    ({"/var/lib/omero-server": "704 997 997 d"}, {"/var/lib/omero-server": "secret, readable by every account"}),
], ids=["closed directory", "listed directory", "passed-through directory", "own group", "shared group",
        "group of no account", "listed, not passed through"])
def test_secret_paths(files, found):
    assert findings(files, SECRET) == found


def test_a_file_holding_a_secret_counts_only_where_others_reach_it():
    files = {"/opt/omero/open.conf": "644 0 0 f", "/var/lib/omero-server": "700 997 997 d",
             "/var/lib/omero-server/closed.conf": "644 997 997 f"}
    holding = ("/opt/omero/open.conf", "/var/lib/omero-server/closed.conf")
    assert findings(files, Expected(root_trusted=set()), holding=holding) \
        == {"/opt/omero/open.conf": "holds a secret value, readable by every account"}


@pytest.mark.parametrize("files, found", [
    ({"/etc/systemd/system/omero-web.service": "644 0 0 f"}, {}),
    ({"/etc/systemd/system/omero-web.service": "644 998 0 f"},
     {"/etc/systemd/system/omero-web.service": "owned by omero-web, and root runs or reads it"}),
    ({"/etc/systemd/system/omero-web.service": "664 0 996 f"},
     {"/etc/systemd/system/omero-web.service": "writable by the group omero, and root runs or reads it"}),
    ({"/etc/systemd/system": "777 0 0 d"},
     {"/etc/systemd/system": "writable by every account, and root runs or reads it"}),
    # A directory above what root trusts counts; one beside it does not.
    ({"/etc": "775 0 1000 d", "/etc/systemd/system/omero-web.service": "644 0 0 f"},
     {"/etc": "writable by the group amy, and root runs or reads it"}),
    ({"/var/lib/amy": "777 1000 1000 d"}, {}),
    # What a service owns below a trusted tree is its own business.
    ({"/opt/omero/web": "755 0 0 d", "/opt/omero/web/OMERO.web": "755 998 998 d"}, {}),
], ids=["root's", "a service's", "a shared group's", "world-writable", "parent", "elsewhere", "service-owned"])
def test_what_root_trusts(files, found):
    expected = Expected(root_trusted={"/etc/systemd", "/opt/omero/web"}, service_owned={"/opt/omero/web/OMERO.web"})
    assert findings(files, expected) == found


@pytest.mark.parametrize("listeners, sockets, found", [
    ([Listener(5432, "127.0.0.1")], (LOOPBACK_5432,), {}),
    ([Listener(5432, "localhost")], (LOOPBACK_5432,), {}),
    ([Listener(5432, "::1")], (LOOPBACK_5432,), {"tcp 127.0.0.1:5432": "listens, and no role declares it"}),
    ([Listener(5432, "127.0.0.1")],
     ("tcp 1: 00000000:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000 108 0 1",),
     {"tcp 0.0.0.0:5432": "listens, and no role declares it"}),
    ([], ("tcp 1: 0100007F:1538 0100007F:9C40 01 00000000:00000000 00:00000000 00000000 108 0 1",), {}),
    ([Listener(None, "127.0.0.1", owner="amy")],
     ("tcp 1: 0100007F:C350 00000000:0000 0A 00000000:00000000 00:00000000 00000000 1000 0 1",), {}),
    ([Listener(None, "127.0.0.1", owner="amy")],
     ("tcp 1: 0100007F:C350 00000000:0000 0A 00000000:00000000 00:00000000 00000000 998 0 1",),
     {"tcp 127.0.0.1:50000": "listens, and no role declares it"}),
    ([], ("udp 1: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 1",),
     {"udp 0.0.0.0:68": "listens, and no role declares it"}),
], ids=["declared", "localhost", "other address", "wider address", "a connection", "an owner's any port",
        "another owner", "udp"])
def test_listeners(listeners, sockets, found):
    assert findings({}, Expected(root_trusted=set(), listeners=listeners), sockets=sockets) == found


@pytest.mark.parametrize("hex_address, address", [
    ("0100007F", "127.0.0.1"), ("00000000", "0.0.0.0"),
    ("00000000000000000000000001000000", "::1"), ("0000000000000000FFFF00000100007F", "127.0.0.1"),
])
def test_socket_address(hex_address, address):
    assert _socket_address(hex_address) == address
