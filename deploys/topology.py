"""Who talks to whom: the roles (inventory groups), how hosts reach each other, and where
each host's backups go."""

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from . import secrets
from .errors import OmeroDeployError, OmeroOptionError
from .grammar import Bad, parse_address
from .options import BY_NAME, DEFAULTS, EXAMPLES, Options

DATABASE, SERVER, WEB = "omero_database", "omero_server", "omero_web"
ANALYSIS = "omero_analysis"  # JupyterHub, served by an omero_web host's nginx
# Read-only OMERO.server nodes and haproxy balancing Ice over them (deploys/readonly.py).
READONLY, BALANCER = "omero_server_readonly", "omero_ice_balancer"
ROLES = (DATABASE, SERVER, WEB, ANALYSIS, READONLY, BALANCER)
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


def peers(host, inventory, options: Options) -> Peers:
    database_hosts = inventory.get_group(DATABASE, [])
    server_hosts = inventory.get_group(SERVER, [])
    if len(database_hosts) > 1:
        raise OmeroDeployError(
            f"group {DATABASE} has {len(database_hosts)} hosts; OMERO uses exactly one database"
        )

    def peer_address(peer) -> str:
        # By name: deploy.py passes pyinfra's context proxy, never the Host object itself.
        return "localhost" if peer.name == host.name else address_of(peer)

    servers = tuple(peer_address(peer) for peer in server_hosts)
    # Read-only servers reach the database as the read-write one does.
    clients = servers + tuple(peer_address(peer) for peer in inventory.get_group(READONLY, []))
    remote_clients = [address for address in clients if address != "localhost"]
    return Peers(
        database_address=peer_address(database_hosts[0]) if database_hosts else None,
        db_client_addresses=clients,
        db_listen_addresses=",".join(["localhost"] + ([address_of(host)] if remote_clients else [])),
        web_server_addresses=servers or (options.web_server_host,),
    )


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


def _remote_options(target) -> dict[str, Any]:
    """The omero_backup host's own options that its clients need, checked as it checks them."""
    remote = {}
    for option in ("omero_backup_remote_dir", "omero_backup_user"):
        try:
            remote[option] = BY_NAME[option].grammar(target.data.get(option, DEFAULTS[option]))
        except Bad as bad:
            raise OmeroOptionError(option, str(bad), target.name, EXAMPLES[option]) from None
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
    option = "omero_secrets_dir"
    try:
        secrets_dir = BY_NAME[option].grammar(peer.data.get(option, DEFAULTS[option]))
    except Bad as bad:
        raise OmeroOptionError(option, str(bad), peer.name, EXAMPLES[option]) from None
    return secrets.ssh_key(secrets_dir, f"{peer.name}-backup-ssh-key")
