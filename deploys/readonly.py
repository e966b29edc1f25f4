"""Read-only OMERO.server nodes, as the Image Data Resource runs them: who they are, what they
read and who reaches them (the operations are in readonly_hosts.py).

The read-write ``omero_server`` host exports the binary repository over NFS, read-only, to
the ``omero_server_readonly`` hosts alone; each mounts it at ``omero_data_dir`` and runs
OMERO.server configured read-only (``config``), on the same database. haproxy on the
``omero_ice_balancer`` host balances Ice (Glacier2's TLS port) over them; OMERO.web reaches
them through it (``omero_web_readonly``).
"""

from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from .errors import OmeroDeployError, OmeroOptionError
from .grammar import SERVER_ZIP, ip_literal
from .server_steps import config_line
from .topology import BALANCER, DATABASE, READONLY, SERVER, WEB, address_of

ICE_PORT = 4064  # Glacier2 over TLS: what OMERO.web and the other clients connect to
READONLY_SERVER_NAME = "omero-readonly"  # the balancer's name in omero.web.server_list
# NFSv4 over TCP 2049 alone (no rpcbind, no mountd): one port between the hosts. Read-only; the
# server squashes root; sync: a client never sees what the read-write server has not written.
EXPORT_OPTIONS = "ro,root_squash,sync,no_subtree_check,sec=sys"
MOUNT_OPTIONS = "ro,nosuid,nodev,noexec,hard,_netdev"


# On every server of a read-only cluster (the read-write one too): IceGrid's admin endpoint on
# the host itself, never on the network the balancer and the other nodes share.
ADMIN_LOCAL = (("Ice.Admin.Endpoints", "tcp -h localhost",
                "IceGrid's admin endpoint on the host itself, not on the cluster's network"),)


def config(memo_dir: str) -> tuple[tuple[str, str, str], ...]:
    """The read-only server's own settings: (key, value, why), loaded after the site's
    ``omero_server_config`` so that nothing there makes the node write."""
    return (
        ("omero.cluster.read_only.db", "true",
         "the database is the read-write server's: no INSERT or UPDATE from here (users log in and "
         "read; imports, scripts and edits are refused)"),
        ("omero.cluster.read_only.repo", "true",
         "the repository is the read-write server's, mounted read-only"),
        ("omero.pixeldata.memoizer.dir.local", memo_dir,
         "Bio-Formats memo files made here (the repository's BioFormatsCache is read-only; existing "
         "memo files there are still copied from it)"),
        ("omero.sessions.session_manager", "ome.services.sessions.InMemorySessionManagerImpl",
         "sessions in this node's memory, not the database"),
        ("omero.security.event_provider", "ome.security.basic.BasicInMemoryEventProvider",
         "events (logins, reads) in memory, not the database"),
        ("omero.cluster.node_provider", "ome.security.basic.BasicInMemoryNodeProvider",
         "the node is not registered in the database"),
        ("omero.server.nodedescriptors", "master:Blitz-0,Tables-0",
         "Blitz and Tables only: the Indexer (FullText), PixelData (pyramids), Processor (scripts) "
         "and DropBox would write"),
        *ADMIN_LOCAL,
    )


def config_lines(settings: tuple[tuple[str, str, str], ...]) -> str:
    """``settings`` as `omero load` lines, each after a comment saying why."""
    return "".join(f"# {why}\n{config_line(key, value)}" for key, value, why in settings)


def export_line(data_dir: str, clients: tuple[str, ...]) -> str:
    """The read-write host's /etc/exports.d line: ``data_dir`` to ``clients`` alone."""
    return f"{data_dir} " + " ".join(f"{client}({EXPORT_OPTIONS})" for client in clients)


def mount_source(server: str, data_dir: str) -> str:
    """NFS's ``server:path``, an IPv6 address in brackets."""
    address = ip_literal(server, version=6)
    return f"{f'[{address}]' if address else server}:{data_dir}"


def mount_unit(path: str) -> str:
    """The systemd mount unit's name for ``path`` (``systemd-escape --path --suffix=mount``);
    the options' paths are absolute and normalised."""
    def escaped(index: int, char: str) -> str:
        if char == "/":
            return "-"
        if char.isascii() and (char.isalnum() or char in ":_" or (char == "." and index)):
            return char
        return "".join(f"\\x{byte:02x}" for byte in char.encode())

    inner = path.strip("/")
    return ("-" if not inner else "".join(escaped(index, char) for index, char in enumerate(inner))) + ".mount"


def cluster(host, inventory, roles: frozenset[str], options, service_manager: str) -> dict[str, Any]:
    """What this host needs of the read-only cluster (Settings' readonly fields), checked."""
    readonly_hosts = inventory.get_group(READONLY, [])
    balancers = inventory.get_group(BALANCER, [])
    # A host in both groups is refused as itself below, not counted as a read-write server.
    servers = [peer for peer in inventory.get_group(SERVER, []) if READONLY not in peer.groups]
    cluster_roles = roles & {READONLY, BALANCER} or (roles & {SERVER} if readonly_hosts else set())

    def refuse(problem: str):
        raise OmeroDeployError(f"host {host.name}: {problem}")

    if cluster_roles and service_manager != "systemd":
        refuse(f"a read-only cluster ({', '.join(sorted(cluster_roles))}) needs systemd: the repository is "
               "shared over the kernel's NFS and mounted by a systemd unit; put it on booted hosts")
    extra: dict[str, Any] = {}
    if READONLY in roles:
        if roles & {SERVER, DATABASE}:
            refuse(f"is in {READONLY} and in {', '.join(sorted(roles & {SERVER, DATABASE}))}: a read-only "
                   "server runs on a host of its own, reading the read-write server's repository")
        if len(servers) != 1:
            refuse(f"is in {READONLY}, and the inventory has {len(servers)} {SERVER} hosts: read-only "
                   f"servers read the repository of exactly one read-write {SERVER} host")
        if not balancers:
            refuse(f"is in {READONLY} but the inventory has no {BALANCER} host: OMERO.web reaches "
                   "read-only servers through it")
        readwrite = servers[0].data.get("omero_server_artifact")
        if _version(readwrite) != _version(options.server_artifact_source):
            raise OmeroOptionError("omero_server_artifact", f"is {options.server_artifact_source!r} here and "
                                   f"{readwrite!r} on {servers[0].name}: a read-only server runs the read-write "
                                   "server's version, whose schema the database has", host.name, readwrite)
        extra["readonly_source"] = address_of(servers[0])
    if SERVER in roles and readonly_hosts:
        extra["readonly_clients"] = tuple(address_of(peer) for peer in readonly_hosts)
    if BALANCER in roles:
        if roles & {SERVER, READONLY}:
            refuse(f"is in {BALANCER} and runs OMERO.server: both would listen on port {ICE_PORT}")
        if not readonly_hosts:
            refuse(f"is in {BALANCER} but the inventory has no {READONLY} host to balance")
        extra["balanced_servers"] = tuple(address_of(peer) for peer in readonly_hosts)
    if len(balancers) > 1:
        refuse(f"group {BALANCER} has {len(balancers)} hosts; give it one (OMERO.web names one address)")
    if WEB in roles:
        if balancers:
            extra["readonly_balancer"] = address_of(balancers[0])
        elif options.web_readonly == "only":
            raise OmeroOptionError("omero_web_readonly", f"is 'only' but the inventory has no {BALANCER} "
                                   "host to reach read-only servers through", host.name, "offered")
    if extra.get("readonly_source") or extra.get("readonly_clients"):
        _same_gid(host, options, servers + readonly_hosts)
    return extra


def _version(source: Any) -> Any:
    """The OMERO.server version an artifact's name gives (the same zip may be a URL on one host,
    a local path on another); what cannot be read is compared as it is."""
    match = SERVER_ZIP.fullmatch(PurePosixPath(urlsplit(source).path).name) if isinstance(source, str) else None
    return match.group(1) if match else source


def _same_gid(host, options, peers) -> None:
    """NFS checks the repository's group by number: ``omero_group_gid`` given, and equal, on
    the read-write host and every read-only one."""
    if options.group_gid is None:
        raise OmeroOptionError("omero_group_gid", f"is required on the {SERVER} host and the {READONLY} "
                               "hosts: they share the repository over NFS, which checks its group by "
                               "number", host.name, 546)
    for peer in peers:
        given = peer.data.get("omero_group_gid")
        if given != options.group_gid:
            raise OmeroOptionError("omero_group_gid", f"is {options.group_gid} here and {given!r} on "
                                   f"{peer.name}: the read-write and read-only servers need the same "
                                   "number", host.name, options.group_gid)


def web_server_list(servers: tuple[str, ...], balancer: str | None, choice: str) -> list[list]:
    """OMERO.web's ``server_list``: the read-write servers, then the balancer (``offered``), or
    the balancer alone (``only``). Its ids are the positions, from 1."""
    readwrite = [[address, ICE_PORT, "omero"] for address in servers]
    if balancer is None:
        return readwrite
    readonly = [[balancer, ICE_PORT, READONLY_SERVER_NAME]]
    return readonly if choice == "only" else readwrite + readonly


def haproxy_server(address: str) -> str:
    """A read-only server's Ice endpoint as haproxy's ``server`` line takes it."""
    return f"{'ipv6@' if ip_literal(address, version=6) else ''}{address}:{ICE_PORT}"
