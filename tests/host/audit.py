"""The permission audit (docs/security.md): one walk of a deployed host, then three rules.

(a) No secret readable by others, nor by a group other accounts share: the secret files the
    settings name, and every file holding a secret value (the harness's, and those the host
    made itself, read from the host's own secret files).
(b) Nothing root executes or reads configuration from is writable by another account: the
    file, its subtree, and every directory above it up to /.
(c) No listening socket but those the host's roles declare.

The host is read with one command (its listing, the files holding a secret, its sockets), so
an audit costs seconds whatever the host holds.
"""

import base64
import ipaddress
import runpy
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pyinfra.facts.server import LinuxDistribution

from deploys import settings as site_settings
from deploys import topology
from deploys.backup import BACKUP_LIB_DIR
from deploys.platform import detect

from .testhosts import SystemdHost

# The harness's cache mounts are the test machine's, not the host's.
NOT_THE_HOSTS = ("/proc", "/sys", "/dev", "/var/cache/apt/archives", "/root/.cache/pip", "/root/.npm")
# What root runs or reads its configuration from on every host, whatever the roles.
ROOT_TRUSTED = ("/etc/systemd", "/usr/lib/systemd", "/etc/supervisor", "/usr/local/sbin", "/usr/local/bin",
                "/etc/nginx", "/etc/sudoers", "/etc/sudoers.d", "/etc/crontab", "/etc/cron.d", "/etc/cron.daily",
                "/etc/cron.hourly", "/etc/cron.weekly", "/etc/cron.monthly", "/etc/apt", "/etc/ld.so.conf",
                "/etc/ld.so.conf.d", "/etc/pam.d", "/etc/ssh", "/usr/sbin/policy-rc.d")
DEBIAN_12 = {"major": 12, "release_meta": {"ID": "debian", "VERSION_ID": "12"}}
MIN_SECRET = 16  # shorter lines of a secret file (its PEM armour, a blank line) are not secret values


@dataclass(frozen=True)
class Listener:
    """A declared listening socket: ``address`` None is any address; ``owner`` (an account)
    set and ``port`` None: any port of that account on ``address``."""

    port: int | None
    address: str | None = None
    owner: str | None = None
    protocol: str = "tcp"


@dataclass
class Expected:
    """What a host may have, from its roles and settings."""

    secret_paths: set[str] = field(default_factory=set)  # files or trees
    # Trees of a group's members' own (the binary repository): no account outside reads them.
    private_paths: set[str] = field(default_factory=set)
    secret_sources: set[str] = field(default_factory=set)  # files on the host, each line a secret
    secret_values: set[str] = field(default_factory=set)
    root_trusted: set[str] = field(default_factory=lambda: set(ROOT_TRUSTED))
    service_owned: set[str] = field(default_factory=set)  # below root_trusted, services' own
    listeners: list[Listener] = field(default_factory=list)


@dataclass(frozen=True)
class Finding:
    path: str
    owner: str
    group: str
    mode: int | None
    why: str

    def __str__(self) -> str:
        mode = "" if self.mode is None else f" {self.mode:04o}"
        return f"{self.path} ({self.owner}:{self.group}{mode}): {self.why}"


@dataclass(frozen=True)
class _Entry:
    mode: int  # permission bits, with setuid, setgid and sticky
    uid: int
    gid: int
    kind: str  # find's %y: f, d, l, ...


def _under(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def _ancestors(path: str) -> list[str]:
    return [str(parent) for parent in PurePosixPath(path).parents]


def secret_values(secrets_dir: Path) -> set[str]:
    """The values the harness gave or generated: each kept file's longer lines."""
    values = set()
    for path in secrets_dir.iterdir():
        values |= {line.strip() for line in path.read_text().splitlines()
                   if len(line.strip()) >= MIN_SECRET and not line.startswith("-----")}
    return values


def expected_for(host, secrets_dir: Path) -> Expected:
    """What ``host`` (deployed from its inventory, with the harness's ``secrets_dir``) may have:
    its options read through the deploy's own settings."""
    namespace = runpy.run_path(str(host.inventory))
    name, data, groups = None, None, set()
    for group in (*topology.ROLES, topology.BACKUP):
        for entry_name, entry_data in namespace.get(group, []):
            if entry_data.get("omero_address") == host.address:
                name, data = entry_name, entry_data
                groups.add(group)
    assert data is not None, f"{host.name} is not in {host.inventory}"
    peers = {group: [_Peer(peer_name, peer_data, _groups_of(namespace, peer_name))
                     for peer_name, peer_data in namespace.get(group, [])]
             for group in (*topology.ROLES, topology.BACKUP)}
    platform = detect(DEBIAN_12)
    booted = isinstance(host, SystemdHost)
    settings = site_settings.load(_Peer(name, data, groups), _Inventory(peers), platform,
                                  pid1="systemd" if booted else "sh")
    expected = expected_from(settings, sshd=booted)
    expected.secret_values |= secret_values(secrets_dir)
    return expected


def expected_from(settings, sshd: bool) -> Expected:
    """The secret files, root's trusted trees and the listeners of a host with ``settings``."""
    expected = Expected()
    secret, sources, trusted, owned = (expected.secret_paths, expected.secret_sources, expected.root_trusted,
                                       expected.service_owned)
    listeners = expected.listeners
    roles = settings.roles
    trusted.add(settings.state_dir)
    if sshd:
        listeners.append(Listener(22))
    if settings.http_proxy:
        secret.add("/etc/apt/apt.conf.d/80omero-proxy")
    if roles & {topology.SERVER, topology.WEB}:
        trusted |= {settings.wheel_dir, settings.download_dir}
    if roles & {topology.DATABASE, topology.STANDBY}:
        secret.add(settings.platform.postgres_data_dir)
        for address in ("127.0.0.1", "::1", *([settings.address] if "," in settings.db_listen_addresses else [])):
            listeners.append(Listener(settings.db_port, address))
    if topology.STANDBY in roles:
        secret.add(f"{settings.platform.postgres_home}/omero-replication.pgpass")
    if topology.SERVER in roles:
        home = settings.server_home
        secret |= {home, settings.server_certificate_password_file, settings.server_certs_dir,
                   settings.server_config_dir, f"{settings.server_dir}/etc/grid/config.xml",
                   settings.server_db_dump_dir, f"{settings.server_dir}/var"}
        expected.private_paths.add(settings.data_dir)
        sources |= {settings.server_certificate_password_file, f"{settings.server_certs_dir}/server.key"}
        trusted |= {settings.server_basedir, settings.ice_home}
        owned |= {*(f"{settings.server_dir}/{sub}" for sub in ("var", "etc")), settings.server_db_dump_dir}
        # Glacier2 (4063, 4064 with TLS) and the registry; Ice's other adapters take any port.
        listeners += [Listener(port) for port in (4061, 4063, 4064)]
        listeners.append(Listener(None, owner=settings.server_user))
    if topology.WEB in roles:
        omerodir = settings.web_omerodir
        secret |= {f"{omerodir}/var/django_secret_key", f"{omerodir}/etc", settings.web_config_dir,
                   settings.web_home}
        sources.add(f"{omerodir}/var/django_secret_key")
        trusted |= {settings.web_basedir}
        owned.add(omerodir)
        listeners.append(Listener(settings.web_bind.port, settings.web_bind.address))
        listeners.append(Listener(settings.nginx_listen.port, settings.nginx_listen.address))
        if settings.https:
            listeners.append(Listener(settings.nginx_https_listen.port, settings.nginx_https_listen.address))
            secret.add(settings.tls_key_path)
            sources.add(settings.tls_key_path)
    if topology.REDIS in roles:
        # The sessions (OMERO session keys) in Redis's snapshots; its configuration, the redis account's.
        secret |= {settings.platform.redis_conf, "/var/lib/redis"}
        trusted.add(settings.redis_filter_dir)
        listeners += [Listener(6379, address) for address in settings.redis_bind]
    if topology.ANALYSIS in roles:
        secret |= {settings.hub_state_dir, settings.npmrc}
        sources |= {settings.hub_cookie_secret, settings.proxy_auth_token}
        trusted |= {settings.analysis_basedir, settings.hub_state_dir}
        port = settings.analysis_port
        listeners += [Listener(p, "127.0.0.1") for p in (port, port + 1, port + 2)]
    if settings.backs_up:
        secret |= {settings.backup_config_dir, settings.backup_cache_dir}
        if settings.backup_local_dir:
            secret.add(settings.backup_local_dir)
        if topology.DATABASE in roles:
            secret.add(settings.backup_dump_dir)
        sources |= {settings.backup_password_file, settings.backup_ssh_key_file}
        trusted |= {settings.backup_config_dir, settings.backup_program, settings.restore_program, BACKUP_LIB_DIR}
    if settings.backup_clients:
        base = settings.backup_remote_dir
        # Each OMERO host's account is chrooted (sshd wants the chroot root's) into its repository.
        chroots = [f"{base}/{name}" for name, _, _ in settings.backup_clients]
        trusted.update(chroots)
        secret.update(f"{chroot}/repository" for chroot in chroots)
        owned.update(f"{chroot}/repository" for chroot in chroots)
    return expected


class _Data(dict):
    def dict(self) -> dict:
        return dict(self)


@dataclass
class _Peer:
    """An inventory entry as settings.load reads a pyinfra host."""

    name: str
    data: dict
    groups: set

    def __post_init__(self):
        self.data = _Data(self.data)

    def get_fact(self, fact):
        """What a standby's settings ask of its primary: its OS (the harness's hosts run Debian 12)."""
        assert fact is LinuxDistribution, fact
        return DEBIAN_12


@dataclass
class _Inventory:
    groups: dict

    def get_group(self, name: str, default=None):
        return self.groups.get(name, default)

    def get_host(self, name: str):
        return next(peer for peers in self.groups.values() for peer in peers if peer.name == name)


def _groups_of(namespace: dict, name: str) -> set:
    return {group for group in (*topology.ROLES, topology.BACKUP)
            if any(entry_name == name for entry_name, _ in namespace.get(group, []))}


def _script(expected: Expected) -> str:
    """The one command: accounts, the listing, the readable files holding a secret, sockets;
    records separated by NUL."""
    values = base64.b64encode("\n".join(sorted(expected.secret_values)).encode()).decode()
    prune = " -o ".join(f"-path {shlex.quote(path)}" for path in NOT_THE_HOSTS)
    sources = " ".join(shlex.quote(path) for path in sorted(expected.secret_sources))
    return f"""set -e
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(echo {values} | base64 -d; echo) > "$work/given"
for source in {sources or "''"}; do [ -f "$source" ] && cat "$source" >> "$work/given"; echo >> "$work/given"; done
awk 'length($0) >= {MIN_SECRET} && $0 !~ /^-----/' "$work/given" | sort -u > "$work/values"
printf '@@passwd\\0'; tr '\\n' '\\0' < /etc/passwd
printf '@@group\\0'; tr '\\n' '\\0' < /etc/group
printf '@@files\\0'; find / \\( {prune} -o -path "$work" \\) -prune -o -printf '%m %U %G %y %p\\0'
printf '@@holding\\0'
if [ -s "$work/values" ]; then
  # Not the package-managed /usr (no deploy writes a secret there), but /usr/local.
  find / \\( {prune} -o -path "$work" -o \\( -path '/usr/*' ! -path /usr/local ! -path '/usr/local/*' \\) \\) \\
    -prune -o -type f -perm -o=r -size -64M -print0 | xargs -0 -r grep -lFZ -f "$work/values" -- || true
fi
printf '@@sockets\\0'
for table in tcp tcp6 udp udp6; do [ -r /proc/net/$table ] && sed "s/^/$table /" /proc/net/$table | tr '\\n' '\\0'; done
printf '@@end\\0'
"""


def _sections(output: str) -> dict[str, list[str]]:
    sections, current = {}, None
    for record in output.split("\0"):
        if record.startswith("@@"):
            current = sections.setdefault(record[2:], [])
        elif current is not None and record:
            current.append(record)
    assert "end" in sections, "the audit's listing was cut short"
    return sections


def _socket_address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    # /proc/net/*6: four 32-bit words, each in host (little-endian) order.
    address = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return str(address.ipv4_mapped or address)


def audit(run, expected: Expected) -> list[Finding]:
    """The findings on the host ``run`` (a command -> CompletedProcess) reaches, given what it
    may have (``expected``)."""
    sections = _sections(run(_script(expected)).stdout)
    users = {int(line.split(":")[2]): line.split(":")[0] for line in sections["passwd"]}
    primary = {line.split(":")[0]: int(line.split(":")[3]) for line in sections["passwd"]}
    groups, shared = {}, set()
    for line in sections["group"]:
        name, _, gid, members = line.split(":")
        groups[int(gid)] = name
        if members:
            shared.add(int(gid))
    # A group that is no account's own, or that accounts join, is shared by several.
    shared |= {gid for gid, name in groups.items() if primary.get(name) != gid}
    shared.discard(0)
    entries = {}
    for record in sections["files"]:
        mode, uid, gid, kind, path = record.split(" ", 4)
        entries[path] = _Entry(int(mode, 8), int(uid), int(gid), kind)

    def finding(path: str, why: str) -> Finding:
        entry = entries.get(path)
        if entry is None:
            return Finding(path, "?", "?", None, why)
        return Finding(path, users.get(entry.uid, str(entry.uid)), groups.get(entry.gid, str(entry.gid)),
                       entry.mode, why)

    def reachable(path: str, bits: int) -> bool:
        """Whether an account outside the owner and group reaches ``path`` with ``bits``."""
        return all(entries.get(parent) is None or entries[parent].mode & stat.S_IXOTH
                   for parent in _ancestors(path)) and bool(entries[path].mode & bits)

    found: dict[str, Finding] = {}
    # (a) secrets
    for path, entry in entries.items():
        secret = any(_under(path, tree) for tree in expected.secret_paths)
        if entry.kind == "l" or not (secret or any(_under(path, tree) for tree in expected.private_paths)):
            continue
        if reachable(path, stat.S_IROTH):  # a directory's listing, a file's content
            found.setdefault(path, finding(path, f"{'secret' if secret else 'private'}, readable by every account"))
        elif secret and entry.mode & stat.S_IRGRP and entry.gid in shared:
            found.setdefault(path, finding(path, f"secret, readable by the shared group {groups.get(entry.gid)}"))
    for path in sections["holding"]:
        if path in entries and reachable(path, stat.S_IROTH):
            found.setdefault(path, finding(path, "holds a secret value, readable by every account"))
    # (b) what root trusts
    trusted = {path for path in entries
               if any(_under(path, tree) for tree in expected.root_trusted)
               and not any(_under(path, tree) for tree in expected.service_owned)}
    for path in sorted(trusted):
        for parent in _ancestors(path):
            if parent not in trusted:
                trusted.add(parent)
    for path in sorted(trusted):
        entry = entries.get(path)
        if entry is None or entry.kind == "l":
            continue
        sticky = entry.kind == "d" and entry.mode & stat.S_ISVTX
        if entry.uid != 0:
            why = f"owned by {users.get(entry.uid, entry.uid)}, and root runs or reads it"
        elif entry.mode & stat.S_IWGRP and entry.gid != 0:
            why = f"writable by the group {groups.get(entry.gid, entry.gid)}, and root runs or reads it"
        elif entry.mode & stat.S_IWOTH and not sticky:
            why = "writable by every account, and root runs or reads it"
        else:
            continue
        found.setdefault(path, finding(path, why))
    # (c) listeners
    for line in sections["sockets"]:
        fields = line.split()
        if fields[1] == "sl":
            continue  # the table's heading
        table, local, state, uid = fields[0], fields[2], fields[4], fields[8]
        tcp = table.startswith("tcp")
        if (tcp and state != "0A") or (not tcp and fields[3].split(":")[1] != "0000"):
            continue  # a connection, not a listener
        hex_address, hex_port = local.split(":")
        address, port, owner = _socket_address(hex_address), int(hex_port, 16), users.get(int(uid), uid)
        protocol = "tcp" if tcp else "udp"
        if not any(_declares(listener, protocol, address, port, owner) for listener in expected.listeners):
            where = f"{protocol} {address}:{port}"
            found.setdefault(where, Finding(where, owner, "-", None, "listens, and no role declares it"))
    return sorted(found.values(), key=lambda f: f.path)


def _declares(listener: Listener, protocol: str, address: str, port: int, owner: str) -> bool:
    if listener.protocol != protocol:
        return False
    if listener.port is not None and listener.port != port:
        return False
    if listener.owner is not None and listener.owner != owner:
        return False
    if listener.address is None:
        return True
    declared = "127.0.0.1" if listener.address == "localhost" else listener.address
    return ipaddress.ip_address(declared) == ipaddress.ip_address(address)


def assert_clean(host, secrets_dir: Path, values: tuple[str, ...] = (),
                 listeners: tuple[Listener, ...] = ()) -> None:
    """The audit of a deployed test host: no finding, else every one listed. ``values``:
    secrets the harness gave otherwise than in ``secrets_dir``; ``listeners``: sockets the
    test itself opened."""
    expected = expected_for(host, secrets_dir)
    expected.secret_values.update(values)
    expected.listeners.extend(listeners)
    findings = audit(host.run, expected)
    assert not findings, "the permission audit found:\n" + "\n".join(map(str, findings))
