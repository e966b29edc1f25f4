"""Who talks to whom: the roles (inventory groups), how hosts reach each other, and where
each host's backups go."""

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from . import secrets
from .errors import OmeroDeployError, OmeroOptionError
from .grammar import Bad, ip_literal, parse_address
from .options import BY_NAME, DEFAULTS, EXAMPLES, Options
from .values import Endpoint, ServerNames, TlsMode

DATABASE, SERVER, WEB = "omero_database", "omero_server", "omero_web"
ANALYSIS = "omero_analysis"  # JupyterHub, served by an omero_web host's nginx
PROXY = "omero_proxy"  # nginx in front of every omero_web host: TLS, caches, maintenance
REDIS = "omero_redis"  # the web nodes' shared sessions
STANDBY = "omero_database_standby"  # PostgreSQL streaming from the omero_database host
# Read-only OMERO.server nodes and haproxy balancing Ice over them (deploys/readonly.py).
READONLY, BALANCER = "omero_server_readonly", "omero_ice_balancer"
ROLES = (DATABASE, SERVER, WEB, ANALYSIS, PROXY, REDIS, STANDBY, READONLY, BALANCER)
# The replication slots the deploy makes on the primary: one per standby, named after it.
SLOT_PREFIX = "omero_standby_"
BACKUP = "omero_backup"  # the host keeping the other hosts' backup repositories
SFTP_HOST_ALIAS = "omero-backup-host"  # the omero_backup host in the backup's ssh_config
# Inside each OMERO host's chroot on the omero_backup host: its restic repository.
BACKUP_REPOSITORY = "/repository"
# Room for "-", a part of the host's name, "-" and a hash in an account name of 32.
_BACKUP_USER_MAX = 16


@dataclass(frozen=True)
class Peers:
    """The hosts this one talks to, as addresses it uses."""

    database_address: str | None  # where the server reaches PostgreSQL
    db_client_addresses: tuple[str, ...]  # server hosts (read-only ones too) PostgreSQL must accept
    db_listen_addresses: str
    web_server_addresses: tuple[str, ...]  # OMERO.server hosts the web connects to
    # The primary's standby (omero_database_standby): where it connects from.
    standby_address: str | None = None


def peers(host, inventory, options: Options) -> Peers:
    database_hosts = inventory.get_group(DATABASE, [])
    server_hosts = inventory.get_group(SERVER, [])
    standby_hosts = inventory.get_group(STANDBY, [])
    if len(database_hosts) > 1:
        raise OmeroDeployError(
            f"group {DATABASE} has {len(database_hosts)} hosts; OMERO uses exactly one database"
        )
    if len(standby_hosts) > 1:
        raise OmeroDeployError(f"group {STANDBY} has {len(standby_hosts)} hosts; give it at most one")
    if standby_hosts and not database_hosts:
        raise OmeroDeployError(f"group {STANDBY} has a host but the inventory has no {DATABASE} host "
                               "for it to follow")
    if standby_hosts and standby_hosts[0].name == database_hosts[0].name:
        raise OmeroDeployError(f"host {standby_hosts[0].name} is in {DATABASE} and {STANDBY}: a standby follows "
                               "another host")

    def peer_address(peer) -> str:
        # By name: deploy.py passes pyinfra's context proxy, never the Host object itself.
        return "localhost" if peer.name == host.name else address_of(peer)

    servers = tuple(peer_address(peer) for peer in server_hosts)
    # Read-only servers reach the database as the read-write one does.
    clients = servers + tuple(peer_address(peer) for peer in inventory.get_group(READONLY, []))
    remote_clients = [address for address in clients if address != "localhost"]
    # The primary listens on its address for a standby too.
    on_network = remote_clients or (standby_hosts and DATABASE in host.groups)
    return Peers(
        database_address=peer_address(database_hosts[0]) if database_hosts else None,
        db_client_addresses=clients,
        db_listen_addresses=",".join(["localhost"] + ([address_of(host)] if on_network else [])),
        web_server_addresses=servers or (options.web_server_host,),
        standby_address=address_of(standby_hosts[0]) if standby_hosts else None,
    )


@dataclass(frozen=True)
class Front:
    """The site as the omero_proxy hosts serve it to browsers: what a web node behind them
    trusts and tells OMERO.web."""

    proxies: tuple[str, ...]  # the proxy hosts' inventory names
    addresses: tuple[str, ...]  # their addresses, the only clients a web node admits
    endpoint: str  # the web node's nginx as they reach it
    server_names: ServerNames
    https: bool
    listen: Endpoint
    https_listen: Endpoint


# The proxy's options a web node behind it reads (the site's names and scheme are the proxy's).
_FRONT_OPTIONS = ("omero_nginx_server_name", "omero_nginx_tls", "omero_nginx_tls_certificate",
                  "omero_nginx_listen", "omero_nginx_https_listen")


def front(host, inventory) -> Front | None:
    """The omero_proxy hosts in front of ``host`` (an omero_web host); None: no proxy."""
    proxies = inventory.get_group(PROXY, [])
    if not proxies:
        return None
    if host.name in {proxy.name for proxy in proxies}:
        raise OmeroDeployError(f"host {host.name} is in {PROXY} and {WEB}: the proxy and the web nodes "
                               "behind it each need their own host (both listen on the site's ports)")
    sites = {tuple(_peer_option(proxy, option) for option in _FRONT_OPTIONS) for proxy in proxies}
    if len(sites) > 1:
        raise OmeroDeployError(f"the hosts of {PROXY} differ in {', '.join(_FRONT_OPTIONS)}: they serve one "
                               "site, so give these options to the group")
    names, tls, certificate, listen, https_listen = sites.pop()
    addresses = tuple(address_of(proxy) for proxy in proxies)
    for proxy, address in zip(proxies, addresses, strict=True):
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise OmeroDeployError(f"host {proxy.name}: the web nodes admit the {PROXY} host by its IP "
                                   f"address (nginx's allow and set_real_ip_from), not {address}; set its "
                                   "omero_address to it") from None
    return Front(proxies=tuple(proxy.name for proxy in proxies), addresses=addresses,
                 endpoint=_node_endpoint(host), server_names=names,
                 https=TlsMode.chosen(tls, certificate).https, listen=listen, https_listen=https_listen)


def web_nodes(inventory) -> tuple[tuple[str, str], ...]:
    """(inventory name, ``address:port`` of its nginx) of every omero_web host, as an
    omero_proxy host reaches them."""
    return tuple((node.name, _node_endpoint(node)) for node in inventory.get_group(WEB, []))


def _node_endpoint(node) -> str:
    address = address_of(node)
    if address in ("localhost", "127.0.0.1", "::1"):
        raise OmeroDeployError(f"host {node.name}: the {PROXY} host reaches omero_web hosts by "
                               "their address; set its omero_address")
    port = _peer_option(node, "omero_nginx_listen").port
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _peer_option(peer, option: str) -> Any:
    """``peer``'s option, checked as it checks it."""
    try:
        return BY_NAME[option].grammar(peer.data.get(option, DEFAULTS[option]))
    except Bad as bad:
        raise OmeroOptionError(option, str(bad), peer.name, EXAMPLES[option]) from None


def redis(host, inventory, options: Options, roles: frozenset[str]) -> dict[str, Any]:
    """Who reaches the omero_redis host, and how (Settings' redis_* fields): the web nodes
    at its address, itself over loopback. Both ends need IP addresses: Redis binds to one and
    nftables admits the web nodes by theirs."""
    redis_hosts = inventory.get_group(REDIS, [])
    if len(redis_hosts) > 1:
        raise OmeroDeployError(f"group {REDIS} has {len(redis_hosts)} hosts; the web nodes share one Redis")
    if not redis_hosts or not roles & {WEB, REDIS}:
        return {}
    target = redis_hosts[0]
    extra: dict[str, Any] = {"redis_password": secrets.generated(options.secrets_dir,
                                                                  f"{target.name}-redis-password")}
    if WEB in roles:
        extra["redis_address"] = "127.0.0.1" if target.name == host.name else _ip_address(target, "Redis binds to it")
        # Sessions are signed with Django's secret key: every node must sign with the same one.
        extra["web_secret_key"] = secrets.generated(options.secrets_dir, f"{target.name}-web-secret-key",
                                                    length=48)
    if REDIS in roles:
        clients = tuple(_ip_address(peer, "the Redis host admits the web nodes by address")
                        for peer in inventory.get_group(WEB, []) if peer.name != host.name)
        extra["redis_clients"] = clients
        extra["redis_bind"] = ("127.0.0.1", *([_ip_address(host, "Redis binds to it")] if clients else []))
    return extra


def _ip_address(peer, why: str) -> str:
    address = address_of(peer)
    if ip_literal(address) is None:
        raise OmeroOptionError("omero_address", f"is {address!r}, not an IP address, and {why}",
                               peer.name, "192.0.2.15")
    return address


def slot_name(name: str) -> str:
    """The replication slot (and application_name) of the standby whose inventory name is
    ``name``: a plain PostgreSQL name, cut to 63 with a hash of the whole when longer."""
    slug = SLOT_PREFIX + re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    if len(slug) <= 63:
        return slug
    return f"{slug[:54]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def database_host_name(inventory) -> str:
    """The inventory name of the omero_database host (its password is kept under it)."""
    return inventory.get_group(DATABASE, [])[0].name


def address_of(host) -> str:
    """How other hosts reach ``host``: its ``omero_address``, else its name (SSH hosts)."""
    given = host.data.get("omero_address")
    if given is not None:
        try:
            return parse_address(given)
        except Bad as bad:
            raise OmeroOptionError("omero_address", str(bad), host.name,
                                   EXAMPLES["omero_address"]) from None
    if host.name.startswith("@"):
        return "localhost"
    try:
        return parse_address(host.name)
    except Bad as bad:
        raise OmeroDeployError(f"host {host.name}: its name is not an address other hosts can "
                               f"use ({bad}); set its omero_address") from None


def backup_account(user: str, repository: str) -> str:
    """The omero_backup host's account for the OMERO host whose repository directory is
    ``repository`` (secrets.file_name of its inventory name): ``<user>-<repository>``,
    lower-cased, '.' as '-'; a name over 32 is cut and given a hash of the whole."""
    slug = re.sub(r"[^a-z0-9_-]", "-", repository.lower())
    name = f"{user}-{slug}"
    if len(name) <= 32:
        return name
    digest = hashlib.sha256(repository.encode()).hexdigest()[:8]
    return f"{name[:32 - 9].rstrip('-')}-{digest}"


def primary_option(primary, option: str) -> Any:
    """An option as the omero_database host has it (a standby follows its primary's)."""
    try:
        return BY_NAME[option].grammar(primary.data.get(option, DEFAULTS[option]))
    except Bad as bad:
        raise OmeroOptionError(option, str(bad), primary.name, EXAMPLES[option]) from None


def _remote_options(target) -> dict[str, Any]:
    """The omero_backup host's own options that its clients need, checked as it checks them."""
    remote = {option: _peer_option(target, option) for option in ("omero_backup_remote_dir", "omero_backup_user")}
    if len(remote["omero_backup_user"]) > _BACKUP_USER_MAX:
        raise OmeroOptionError("omero_backup_user", f"is longer than {_BACKUP_USER_MAX} characters: it begins "
                               "the name of one account per OMERO host (at most 32)", target.name,
                               EXAMPLES["omero_backup_user"])
    return remote


def _accounts(inventory, user: str, target_name: str) -> dict[str, str]:
    """{inventory name: account} of every OMERO host backed up to the omero_backup host."""
    names = sorted({peer.name for group in (DATABASE, SERVER) for peer in inventory.get_group(group, [])})
    accounts: dict[str, str] = {}
    for name in names:
        account = backup_account(user, secrets.file_name(name))
        other = next((peer for peer, taken in accounts.items() if taken == account), None)
        if other is not None:
            raise OmeroDeployError(f"hosts {other} and {name} would share the account {account} on the "
                                   f"backup host {target_name}: rename one of them in the inventory")
        accounts[name] = account
    return accounts


def backups(host, inventory, options: Options, roles: frozenset[str]) -> dict[str, Any]:
    """Where this host's backups go and the key it reaches the omero_backup host with; on the
    omero_backup host, the OMERO hosts it keeps repositories for (Settings' backup_* fields)."""
    backup_hosts = inventory.get_group(BACKUP, [])
    if len(backup_hosts) > 1:
        raise OmeroDeployError(f"group {BACKUP} has {len(backup_hosts)} hosts; give it one")
    backed_up = roles & {DATABASE, SERVER}
    if BACKUP in host.groups and backed_up:
        raise OmeroDeployError(f"host {host.name} is in {BACKUP} and in {', '.join(sorted(backed_up))}: "
                               "a host cannot hold its own off-host backups")
    extra: dict[str, Any] = {}
    if BACKUP in host.groups:
        accounts = _accounts(inventory, _remote_options(host)["omero_backup_user"], host.name)
        extra["backup_clients"] = tuple(
            (secrets.file_name(name), account,
             secrets.public_ssh_key(_ssh_key(inventory.get_host(name)), f"omero-backup {name}"))
            for name, account in accounts.items())
    if not backed_up or not (options.backup_local_dir or backup_hosts):
        return extra
    repositories = []
    if options.backup_local_dir:
        repositories.append(("local", options.backup_local_dir))
    if backup_hosts:
        target = backup_hosts[0]
        user = _remote_options(target)["omero_backup_user"]
        # The account is chrooted into its own directory: the repository's path is the chroot's.
        repositories.append(("remote", f"sftp:{SFTP_HOST_ALIAS}:{BACKUP_REPOSITORY}"))
        extra["backup_remote"] = (address_of(target), _accounts(inventory, user, target.name)[host.name])
        extra["backup_ssh_key"] = _ssh_key(host)
    extra["backup_repositories"] = tuple(repositories)
    return extra


def _ssh_key(peer) -> str:
    """The key ``peer`` logs in to the omero_backup host with, kept in its secrets directory."""
    return secrets.ssh_key(_peer_option(peer, "omero_secrets_dir"), f"{peer.name}-backup-ssh-key")
