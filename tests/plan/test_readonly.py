"""Read-only OMERO.server nodes (README "Read-only servers"), planned on each supported OS
family: what the read-write server exports, what the read-only servers mount and load, the
balancer's haproxy, PostgreSQL's admissions and OMERO.web's server list. No host test runs
them without OMERO.server artifacts (tests/host/test_readonly.py)."""

import hashlib
import json
import re
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest

from deploys import readonly
from deploys.errors import OmeroDeployError, OmeroOptionError

from .conftest import ALL_ROLES
from .harness import unbatched
from .test_refusals import assert_refused_first

pytestmark = pytest.mark.plan

DB, RW, RO1, RO2, LB, WEB = "10.0.5.11", "10.0.5.12", "10.0.5.21", "10.0.5.22", "10.0.5.30", "10.0.5.40"
GID = 546
SERVER_CONFIG = "/opt/omero/server/config/00-omero-server.omero"
WEB_CONFIG = "/opt/omero/web/config/01-omero-web.omero"
PG_HBA = {"debian12": "/etc/postgresql/15/main/pg_hba.conf", "ubuntu24.04": "/etc/postgresql/16/main/pg_hba.conf",
          "rocky9": "/var/lib/pgsql/data/pg_hba.conf"}
OSES = tuple(PG_HBA)
INVENTORY = Path(__file__).resolve().parents[2] / "inventories" / "readonly.py"
# A fresh site: every step that follows a change of its sources (exportfs, a reload) is due.
CHANGED = {re.compile(r" -newer "): ["changed"]}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cluster_hosts(web_data=None, **extra):
    server = {"omero_group_gid": GID}
    return {
        "db": (("omero_database",), {"omero_address": DB}),
        "rw": (("omero_server",), {"omero_address": RW, **server}),
        "ro1": (("omero_server_readonly",), {"omero_address": RO1, **server}),
        "ro2": (("omero_server_readonly",), {"omero_address": RO2, **server}),
        "lb": (("omero_ice_balancer",), {"omero_address": LB}),
        "web": (("omero_web",), {"omero_address": WEB, **(web_data or {})}),
        **extra,
    }


@pytest.fixture(scope="module", params=OSES)
def site(request, deploy):
    return request.param, deploy(cluster_hosts(), os_name=request.param, responses=CHANGED)


def loaded(run) -> dict[str, str]:
    """The server's configuration as `omero load` leaves it: the last value of each key."""
    settings = {}
    for line in run.uploads[SERVER_CONFIG].splitlines():
        words = re.fullmatch(r"config set -- (\S+) (.+)", line)
        if words:
            settings[words.group(1)] = words.group(2).strip("'")
    return settings


def server_list(run) -> list:
    return json.loads(re.search(r"omero\.web\.server_list '(.+)'", run.uploads[WEB_CONFIG]).group(1))


def test_readonly_servers_are_configured_as_idrs(site):
    _, runs = site
    for name in ("ro1", "ro2"):
        config = loaded(runs[name])
        assert {key: config.get(key) for key, _, _ in readonly.config("/var/lib/omero-server/BioFormatsCache")} == {
            "omero.cluster.read_only.db": "true", "omero.cluster.read_only.repo": "true",
            "omero.pixeldata.memoizer.dir.local": "/var/lib/omero-server/BioFormatsCache",
            "omero.sessions.session_manager": "ome.services.sessions.InMemorySessionManagerImpl",
            "omero.security.event_provider": "ome.security.basic.BasicInMemoryEventProvider",
            "omero.cluster.node_provider": "ome.security.basic.BasicInMemoryNodeProvider",
            "omero.server.nodedescriptors": "master:Blitz-0,Tables-0",
            "Ice.Admin.Endpoints": "tcp -h localhost"}, name
        # The same database and repository path as the read-write server.
        assert config["omero.db.host"] == DB and config["omero.data.dir"] == "/OMERO"
        # Every read-only setting says why, on the line before it.
        lines = runs[name].uploads[SERVER_CONFIG].splitlines()
        for index, line in enumerate(lines):
            if any(f" {key} " in line for key, _, _ in readonly.config("x")):
                assert lines[index - 1].startswith("# "), line


def test_readonly_settings_come_after_the_sites(deploy):
    """omero_server_config cannot make a read-only server write: its values load first."""
    hosts = cluster_hosts()
    hosts["ro1"][1]["omero_server_config"] = {"omero.cluster.read_only.db": "false"}
    config = loaded(deploy(hosts, os_name="debian12")["ro1"])
    assert config["omero.cluster.read_only.db"] == "true"


def test_readwrite_server_keeps_the_schema_and_locks_admin(site):
    _, runs = site
    rw, ro = runs["rw"], runs["ro1"]
    assert loaded(rw)["Ice.Admin.Endpoints"] == "tcp -h localhost"
    assert "omero.cluster.read_only.db" not in loaded(rw)
    assert any("Create the OMERO schema" in op for op in rw.ops)
    # A read-only server neither makes nor upgrades the schema, dumps, nor holds a .pgpass.
    for marker in ("schema", "dump"):
        assert not [op for op in ro.ops if marker in op.lower()], marker
    assert "/var/lib/omero-server/.pgpass" not in ro.uploads


def test_readwrite_server_exports_the_repository_to_the_readonly_servers_alone(site):
    os_name, runs = site
    rw = runs["rw"]
    exports = [line for line in rw.uploads["/etc/exports.d/omero.exports"].splitlines() if not line.startswith("#")]
    options = "ro,root_squash,sync,no_subtree_check,sec=sys"
    assert exports == [f"/OMERO {RO1}({options}) {RO2}({options})"]
    package = "nfs-kernel-server" if os_name != "rocky9" else "nfs-utils"
    assert any(package in command and "install" in command for command in rw.commands)
    assert "systemctl enable nfs-server.service" in " ".join(rw.commands)
    assert "exportfs -ra" in rw.commands
    # No other host exports anything.
    for name in ("ro1", "web", "lb", "db"):
        assert "/etc/exports.d/omero.exports" not in runs[name].uploads, name


def test_readonly_servers_mount_it_read_only_at_boot(site):
    os_name, runs = site
    for name in ("ro1", "ro2"):
        ro = runs[name]
        unit = ro.uploads["/etc/systemd/system/OMERO.mount"]
        assert f"What={RW}:/OMERO\n" in unit and "Where=/OMERO\n" in unit and "Type=nfs4\n" in unit
        [options] = re.findall(r"(?m)^Options=(.*)$", unit)
        assert options.split(",")[0] == "ro" and {"nosuid", "nodev", "noexec"} <= set(options.split(","))
        assert "WantedBy=remote-fs.target" in unit
        assert "systemctl enable OMERO.mount" in " ".join(ro.commands)
        assert "systemctl start OMERO.mount" in " ".join(ro.commands)
        # The server needs the mount, and never writes the repository.
        server_unit = ro.uploads["/etc/systemd/system/omero-server.service"]
        assert "RequiresMountsFor=/OMERO\n" in server_unit
        [writable] = re.findall(r"(?m)^ReadWritePaths=(.*)$", server_unit)
        assert "/OMERO" not in writable.split()
        # The mount point is never chowned (it is the read-write server's, read-only).
        assert not [c for c in ro.commands if re.search(r"\bch(own|mod) \S+ /OMERO$", c)]
        client = "nfs-common" if os_name != "rocky9" else "nfs-utils"
        assert any(client in command and "install" in command for command in ro.commands)
        # Its group has the read-write server's number: NFS checks it by number.
        assert any(re.fullmatch(rf"groupadd -r omero --gid {GID}", c) for c in ro.commands)
        assert any(re.fullmatch(rf"groupadd -r omero --gid {GID}", c) for c in runs["rw"].commands)


def test_database_admits_every_server(site):
    os_name, runs = site
    hba = runs["db"].uploads[PG_HBA[os_name]].splitlines()
    remote = [line.split() for line in hba if line.startswith("host") and "127.0.0.1" not in line
              and "::1" not in line]
    assert remote == [["host", "omero", "omero", f"{address}/32", "scram-sha-256"] for address in (RW, RO1, RO2)]


def test_balancer_spreads_ice_over_the_readonly_servers(site):
    os_name, runs = site
    lb = runs["lb"]
    config = lb.uploads["/etc/haproxy/haproxy.cfg"]
    lines = [line.strip() for line in config.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert "mode tcp" in lines and "bind :4064" in lines
    assert "balance source" in lines and "hash-type consistent" in lines
    assert [line for line in lines if line.startswith("server ")] == [
        f"server readonly1 {RO1}:4064", f"server readonly2 {RO2}:4064"]
    assert "timeout client 600s" in lines and "timeout server 600s" in lines
    assert any("haproxy" in command and "install" in command for command in lb.commands)
    assert "haproxy -c -q -f /etc/haproxy/haproxy.cfg" in lb.commands
    # Nothing of OMERO on the balancer.
    assert not [command for command in unbatched(lb.commands)
                if "omero" in command.lower() and "pyinfra" not in command]


def test_web_offers_the_readonly_servers_after_the_readwrite_one(site):
    _, runs = site
    assert server_list(runs["web"]) == [[RW, 4064, "omero"], [LB, 4064, "omero-readonly"]]


def test_web_may_use_the_readonly_servers_alone(deploy):
    web = deploy(cluster_hosts({"omero_web_readonly": "only"}), os_name="debian12")["web"]
    assert server_list(web) == [[LB, 4064, "omero-readonly"]]


def without(hosts, name, option):
    return {**hosts, name: (hosts[name][0], {k: v for k, v in hosts[name][1].items() if k != option})}


REFUSED = [
    # (inventory change, error type, what the message says, the host refused: None, the first planned)
    pytest.param(lambda h: without(h, "ro1", "omero_group_gid"), OmeroOptionError,
                 "option omero_group_gid (host @fake/", None, id="gid missing"),
    pytest.param(lambda h: without(h, "rw", "omero_group_gid"), OmeroOptionError,
                 "option omero_group_gid (host @fake/", None, id="gid missing on the rw host"),
    pytest.param(lambda h: {**h, "ro2": (h["ro2"][0], {**h["ro2"][1], "omero_group_gid": 547})}, OmeroOptionError,
                 "547", None, id="gids differ"),
    pytest.param(lambda h: {k: v for k, v in h.items() if k != "lb"}, OmeroDeployError,
                 "is in omero_server_readonly but the inventory has no omero_ice_balancer host", None,
                 id="no balancer"),
    pytest.param(lambda h: {k: v for k, v in h.items() if k not in ("ro1", "ro2")}, OmeroDeployError,
                 "is in omero_ice_balancer but the inventory has no omero_server_readonly host", "lb",
                 id="nothing to balance"),
    pytest.param(lambda h: {k: v for k, v in h.items() if k != "rw"}, OmeroDeployError,
                 "the inventory has 0 omero_server hosts", None, id="no read-write server"),
    pytest.param(lambda h: {**h, "rw2": (("omero_server",), {"omero_address": "10.0.5.13", "omero_group_gid": GID})},
                 OmeroDeployError, "the inventory has 2 omero_server hosts", None, id="two read-write servers"),
    pytest.param(lambda h: {**h, "ro1": (("omero_server_readonly", "omero_server"), h["ro1"][1])}, OmeroDeployError,
                 "a read-only server runs on a host of its own", "ro1", id="read-only and read-write"),
    pytest.param(lambda h: {**h, "lb": (("omero_ice_balancer", "omero_server_readonly"), {**h["lb"][1],
                                                                                         "omero_group_gid": GID})},
                 OmeroDeployError, "both would listen on port 4064", "lb", id="balancer on a server"),
    pytest.param(lambda h: {**h, "lb2": (("omero_ice_balancer",), {"omero_address": "10.0.5.31"})},
                 OmeroDeployError, "group omero_ice_balancer has 2 hosts", None, id="two balancers"),
]


@pytest.mark.parametrize("change, error, problem, refused", REFUSED)
def test_a_cluster_that_cannot_work_is_refused_before_anything_changes(deploy, change, error, problem, refused):
    with pytest.raises(error) as caught:
        deploy(change(cluster_hosts()), os_name="debian12", execute=False)
    assert problem in str(caught.value)
    refused = refused or re.search(r"host @fake/(\w+)", str(caught.value)).group(1)
    assert f"host @fake/{refused}" in str(caught.value)
    assert_refused_first(caught.value, host=refused)


def test_readonly_servers_run_the_readwrite_servers_version(deploy, tmp_path):
    other = tmp_path / "OMERO.server-5.6.17-ice36.zip"
    other.write_text("another version\n")
    hosts = cluster_hosts()
    hosts["ro2"][1].update(omero_server_artifact=str(other), omero_server_sha256=sha256(other))
    refused = r"option omero_server_artifact \(host @fake/ro2\): .*5\.6\.17"
    with pytest.raises(OmeroOptionError, match=refused) as caught:
        deploy(hosts, os_name="debian12", execute=False)
    assert "a read-only server runs the read-write server's version" in str(caught.value)
    assert_refused_first(caught.value, host="ro2")


def test_web_readonly_only_needs_a_balancer(deploy):
    hosts = {"db": (("omero_database",), {}), "web": (("omero_web",), {"omero_web_readonly": "only"})}
    with pytest.raises(OmeroOptionError, match=r"option omero_web_readonly \(host @fake/web\): is 'only'") as caught:
        deploy(hosts, execute=False)
    assert_refused_first(caught.value, host="web")


def test_a_cluster_needs_systemd(deploy):
    with pytest.raises(OmeroDeployError, match="a read-only cluster .* needs systemd") as caught:
        deploy(cluster_hosts(), os_name="debian12", pid1="bash", execute=False)
    assert_refused_first(caught.value, host="rw")


def test_a_group_numbered_otherwise_stops_the_server_host(deploy):
    """An existing omero group of another number would leave the repository unreadable over
    NFS: the deploy stops on that host before the group is used."""
    taken = {"getent group omero || true": ["omero:x:998:"]}
    with pytest.raises(Exception, match="the group omero exists with the number 998, not omero_group_gid's 546"):
        deploy(cluster_hosts(), os_name="debian12", responses=taken)


def test_the_example_inventory_plans(deploy, server_data):
    """inventories/readonly.py (the README's example) as written, but for the artifacts (the
    plan's stand-ins) and the SSH connection (a fake host, reached by the example's name)."""
    groups = {name: value for name, value in runpy.run_path(str(INVENTORY)).items() if isinstance(value, list)}
    hosts = {}
    for group, members in groups.items():
        for name, data in members:
            options = {key: value for key, value in data.items() if key.startswith("omero_")}
            if "omero_server_artifact" in options:
                options.update(server_data)
            known = hosts.setdefault(name.split(".")[0], ((), {**options, "omero_address": name}))
            hosts[name.split(".")[0]] = ((*known[0], group), known[1])
    runs = deploy(hosts, responses=CHANGED)
    assert server_list(runs["web"]) == [["omero.lab.example.org", 4064, "omero"],
                                        ["ice.lab.example.org", 4064, "omero-readonly"]]
    assert "What=omero.lab.example.org:/OMERO\n" in runs["ro2"].uploads["/etc/systemd/system/OMERO.mount"]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze on this machine")
@pytest.mark.parametrize("data_dir", ["/OMERO", "/data/OMERO-ro"])
def test_mount_unit_is_one_systemd_accepts(deploy, tmp_path, data_dir):
    """systemd refuses a mount unit whose name is not its Where= path, escaped."""
    hosts = cluster_hosts()
    for name in ("rw", "ro1", "ro2"):
        hosts[name][1]["omero_data_dir"] = data_dir
    ro = deploy(hosts, os_name="debian12")["ro1"]
    [(path, unit)] = [(path, text) for path, text in ro.uploads.items() if path.endswith(".mount")]
    local = tmp_path / Path(path).name
    local.write_text(unit)
    verified = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize("option, value, problem", [
    ("omero_group_gid", 5, "must be a whole number from 100 to 59999, not 5"),
    ("omero_group_gid", "546", "must be a whole number from 100 to 59999, not '546'"),
    ("omero_web_readonly", "yes", "must be offered or only, not 'yes'"),
    ("omero_ice_balancer_timeout", 10, "must be a whole number from 60 to 86400, not 10"),
    ("omero_ice_balancer_timeout", True, "must be a whole number from 60 to 86400, not True"),
])
def test_bad_values_refused_naming_the_option(deploy, option, value, problem):
    with pytest.raises(OmeroOptionError, match=rf"option {option} \(host @fake/aio\): ") as caught:
        deploy({"aio": (ALL_ROLES, {option: value})}, execute=False)
    assert problem in str(caught.value)
    assert_refused_first(caught.value)


def test_a_site_without_readonly_servers_is_as_before(deploy):
    """No read-only host: no export, no NFS, no admin-endpoint line, no balancer in the list."""
    runs = deploy({"db": (("omero_database",), {"omero_address": DB}),
                   "rw": (("omero_server",), {"omero_address": RW}),
                   "web": (("omero_web",), {"omero_address": WEB})}, os_name="debian12", responses=CHANGED)
    rw = runs["rw"]
    assert "/etc/exports.d/omero.exports" not in rw.uploads
    assert not [command for command in rw.commands if "nfs" in command or "exportfs" in command]
    assert "Ice.Admin.Endpoints" not in rw.uploads[SERVER_CONFIG]
    assert server_list(runs["web"]) == [[RW, 4064, "omero"]]
    assert "ReadWritePaths=" in rw.uploads["/etc/systemd/system/omero-server.service"]
    assert "RequiresMountsFor" not in rw.uploads["/etc/systemd/system/omero-server.service"]
