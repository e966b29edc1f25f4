"""The permission model as the deploy makes it: every owner, group and mode the plan of a
fresh host sets, compared with the table in docs/permissions.md, and the lines of the
units and the nginx site that confine what runs. A changed mode, owner, umask, sandbox
line or security header fails here before any host is touched."""

import re
from pathlib import Path

import pytest

from ..certificates import CertificateAuthority
from .conftest import ALL_ROLES
from .test_readonly import cluster_hosts

pytestmark = pytest.mark.plan

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "permissions.md"
NAME = "omero.lab.example.org"
# A host with every role but the backup host's, HTTPS, backups, DropBox, JupyterHub, a proxy.
EVERYTHING = {"omero_nginx_server_name": NAME, "omero_analysis_server_name": "jupyter.lab.example.org",
              "omero_nginx_tls": "self-signed",
              "omero_backup_local_dir": "/srv/omero-local-backup", "omero_server_dropbox": True,
              "omero_http_proxy": "http://proxy.lab:3128", "omero_web_apps": ["omero-figure"]}
ROLES = (*ALL_ROLES, "omero_analysis")
FRONT = {"omero_nginx_server_name": NAME, "omero_nginx_tls": "self-signed"}
WHEEL_URL = "https://wheels.lab.example.org/zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl"


def manifest(run) -> dict[str, tuple[str, str, str]]:
    """Path -> (owner, group, mode) as the plan leaves it: the last chown and chmod of each
    path, a staged secret's followed through its rename; '-' where the plan sets none."""
    owners: dict[str, str] = {}
    modes: dict[str, str] = {}
    for command in run.raw_commands:
        for words in (part.strip("()' ").split() for part in command.split(" && ")):
            if words[:1] == ["chmod"] and len(words) == 3:
                modes[words[2]] = words[1]
            elif words[:1] == ["install"] and "-d" not in words:
                flags = dict(zip(words[1:-2:2], words[2:-2:2], strict=True))
                if "-m" in flags:
                    modes[words[-1]] = flags["-m"]
                if "-o" in flags:
                    owners[words[-1]] = f"{flags['-o']}:{flags.get('-g', '-')}"
            elif words[:1] == ["chown"] and len(words) == 3 and ":" in words[1]:
                owners[words[2]] = words[1]
            elif words[:2] == ["mv", "-f"] and len(words) == 4:
                for table in (owners, modes):
                    if words[2] in table:
                        table[words[3]] = table.pop(words[2])
    return {path: (*owners.get(path, "-:-").split(":"), modes.get(path, "-"))
            for path in sorted({*owners, *modes}) if not path.startswith("/tmp/")}


def documented() -> dict[str, tuple[str, str, str]]:
    """``| path | owner | group | mode | why |`` rows of docs/permissions.md."""
    rows = re.findall(r"^\| `(/[^`]*)` \| (\S+) \| (\S+) \| (\S+) \| .* \|$", DOC.read_text(), re.MULTILINE)
    return {path: (owner, group, mode) for path, owner, group, mode in rows}


@pytest.fixture(scope="module")
def scenarios(deploy, tmp_path_factory) -> dict:
    """The plans whose paths together make the table: everything on one host (systemd, then
    supervisord), a site's own certificate (and a downloaded wheel), an ACME client, a backup host,
    a Redis host, a PostgreSQL standby and its primary."""
    ca = CertificateAuthority(tmp_path_factory.mktemp("permissions-ca"))
    chain, key, _ = ca.issue("site", [NAME])
    lab_ca = tmp_path_factory.mktemp("permissions-lab-ca") / "lab-ca.crt"
    lab_ca.write_bytes(ca.path.read_bytes())
    everything = {**EVERYTHING, "omero_extra_ca_certificates": [str(lab_ca)]}
    web = ("omero_web",)
    # Every step that redoes something when its sources changed (a config load, a
    # certificate) is planned: their files are made then too.
    changed = {re.compile(r" -newer "): ["changed"]}
    replicated = deploy({"db": (("omero_database",), {"omero_address": "10.0.0.1"}),
                         "standby": (("omero_database_standby",), {"omero_address": "10.0.0.2"})}, os_name="debian12")
    readonly_cluster = deploy(cluster_hosts(), os_name="debian12", responses=changed)
    return {
        "everything": deploy({"aio": (ROLES, everything)}, os_name="debian12", responses=changed)["aio"],
        "a primary with a standby": replicated["db"],
        "a standby": replicated["standby"],
        "under supervisord": deploy({"aio": (ROLES, everything)}, os_name="debian12", pid1="bash",
                                    responses=changed)["aio"],
        "a site's own certificate": deploy({"web": (web, {"omero_nginx_server_name": NAME,
                                                          "omero_nginx_tls_certificate": str(chain),
                                                          "omero_nginx_tls_key": str(key),
                                                          "omero_icepy_wheel": WHEEL_URL,
                                                          "omero_icepy_wheel_sha256": "0" * 64})},
                                           os_name="debian12")["web"],
        "an ACME client": deploy({"web": (web, {"omero_nginx_server_name": NAME, "omero_nginx_tls": "acme"})},
                                 os_name="debian12")["web"],
        "a backup host": deploy({"db": (("omero_database",), {}), "store": (("omero_backup",), {})},
                                os_name="debian12")["store"],
        "a front proxy": deploy({"proxy": (("omero_proxy",), {"omero_address": "10.0.0.10",
                                                            **FRONT}),
                                 "web": (web, {"omero_address": "10.0.0.11", **FRONT})},
                                os_name="debian12", responses=changed)["proxy"],
        "a Redis host": deploy({"redis": (("omero_redis",), {"omero_address": "10.0.0.30"}),
                                "web": (web, {"omero_address": "10.0.0.31"})},
                               os_name="debian12", responses=changed)["redis"],
        **{f"a read-only cluster's {name}": readonly_cluster[name] for name in ("rw", "ro1", "lb")},
    }


@pytest.fixture(scope="module")
def everything(scenarios):
    return scenarios["everything"]


def test_every_path_as_the_permission_model_says(scenarios):
    expected, seen = documented(), set()
    assert len(expected) > 50  # the table was read
    differences = []
    for scenario, run in scenarios.items():
        for path, planned in manifest(run).items():
            seen.add(path)
            if expected.get(path) != planned:
                differences.append(f"{scenario}: {path}: planned {planned}, docs/permissions.md {expected.get(path)}")
    differences += [f"{path}: in docs/permissions.md, in no plan" for path in sorted(set(expected) - seen)]
    assert not differences, "\n".join(differences)


def test_nothing_writable_by_others(scenarios):
    for run in scenarios.values():
        for path, (_, _, mode) in manifest(run).items():
            assert mode == "-" or not int(mode, 8) & 0o002, f"{path} is {mode}"


# Each unit's lines that confine it (systemd.exec(5)), all of them: a line dropped or added
# fails. The web faces the network; Java's JIT needs writable code pages (the server).
CONFINED = ("ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
            "NoNewPrivileges=yes", "CapabilityBoundingSet=", "ProtectHostname=yes", "ProtectClock=yes",
            "ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectKernelLogs=yes",
            "ProtectControlGroups=yes", "RestrictNamespaces=yes", "RestrictRealtime=yes", "RestrictSUIDSGID=yes",
            "LockPersonality=yes", "SystemCallArchitectures=native", "SystemCallFilter=@system-service")
SERVER_DIR = "/opt/omero/server/OMERO.server-5.6.16-ice36"
BACKUP_UNIT = ("ProtectSystem=strict", "ProtectHome=read-only", "PrivateTmp=yes", "PrivateDevices=yes",
               "ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectControlGroups=yes",
               "RestrictRealtime=yes", "LockPersonality=yes",
               "ReadWritePaths=/var/lib/omero-backup /var/cache/omero-backup /srv/omero-local-backup")
# The hub runs as root (PAM, spawning users' servers): what confines it without breaking that.
HUB_UNIT = ("ProtectSystem=full", "PrivateTmp=yes", "ProtectKernelTunables=yes", "ProtectKernelModules=yes",
            "ProtectControlGroups=yes")
UNITS = {
    "omero-jupyterhub.service": HUB_UNIT,
    "omero-backup.service": BACKUP_UNIT,
    "omero-backup-check.service": BACKUP_UNIT,
    "omero-server.service": (*CONFINED, "UMask=0007", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
                             f"ReadWritePaths={SERVER_DIR}/var {SERVER_DIR}/etc /OMERO /var/lib/omero-server"),
    "omero-web.service": (*CONFINED, "UMask=0027", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                          "MemoryDenyWriteExecute=yes", "ProtectProc=invisible", "ProcSubset=pid", "RemoveIPC=yes",
                          "ReadWritePaths=/opt/omero/web/OMERO.web/var /var/lib/omero-web"),
}
_CONFINING = re.compile(r"^(Protect|Private|NoNewPrivileges|CapabilityBoundingSet|Restrict|LockPersonality|"
                        r"MemoryDenyWriteExecute|SystemCall|RemoveIPC|ReadWritePaths|ProcSubset|UMask)")


@pytest.mark.parametrize("unit", UNITS)
def test_units_confine_what_they_run(everything, unit):
    lines = everything.uploads[f"/etc/systemd/system/{unit}"].splitlines()
    assert sorted(line for line in lines if _CONFINING.match(line)) == sorted(UNITS[unit])


# What a command writes under the umask it runs with: a secret, made closed from the start.
UMASKS = [
    ("/opt/omero/server/config/*.omero", "077"),  # config.xml: the database password
    ("/opt/omero/web/config/*.omero", "077"),  # config.xml: omero_web_config's values
    ("openssl genrsa -out /var/lib/omero-server/certs/server.key", "077"),  # Glacier2's key
    ("-keyout /etc/nginx/omero-tls/site.key.new", "077"),  # the site's key
    ("secrets.token_hex(32)", "077"),  # the hub's secrets
    (" db script --file ", "077"),  # the schema script holds root's password hash
]


@pytest.mark.parametrize("command, umask", UMASKS, ids=[marker for marker, _ in UMASKS])
def test_secrets_made_closed_from_the_start(everything, command, umask):
    texts = [*everything.raw_commands, *everything.uploads.values()]  # the server's unit loads its config
    runs = [text for text in texts if command in text]
    assert runs, f"no command does {command}"
    for run in runs:
        for line in run.splitlines():
            if command in line:
                umasks = re.findall(r"\bumask ([0-7]+) &&", line[:line.index(command)])
                assert umasks and umasks[-1] == umask, line


# Every response of the site, errors included: nginx's version on none, and the headers.
SITE_HEADERS = ('add_header Strict-Transport-Security "max-age=63072000" always;',
                "add_header X-Content-Type-Options nosniff always;",
                "add_header Referrer-Policy strict-origin-when-cross-origin always;",
                "add_header Content-Security-Policy \"frame-ancestors 'self'\" always;",
                "proxy_set_header X-Forwarded-Proto $scheme;")


@pytest.mark.parametrize("site", ["omero-web.conf", "omero-jupyterhub.conf"])
def test_site_sends_its_security_headers(everything, site):
    lines = [line.strip() for line in everything.uploads[f"/etc/nginx/conf.d/{site}"].splitlines()]
    for header in SITE_HEADERS:
        assert header in lines, header
    assert lines.count("server_tokens off;") == lines.count("server {")
