"""One host's settings: its options parsed (``options``), its roles and peers (``topology``),
every path (``layout``), and what is resolved from them, read and checked up front.

``load()`` runs while pyinfra plans the deploy (before anything executes), so a bad option
stops the run before any host changes; the error names the option, the problem and a good
value.
"""

import os
import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pyinfra.facts.server import LinuxDistribution

from . import readonly, secrets, topology
from .checks import Checker, parse_options
from .errors import OmeroDeployError
from .grammar import ICE_TARBALL, ICEPY_WHEEL, SERVER_ZIP, hub_name_clash, proxy_node_major
from .layout import Layout
from .options import DEFAULTS, Options
from .platform import Platform, detect
from .topology import ANALYSIS, DATABASE, PROXY, READONLY, REDIS, ROLES, SERVER, STANDBY, WEB, Front
from .values import Artifact, ServerNames, TlsMode


@dataclass(frozen=True)
class Settings(Options, Layout):
    """One host's parsed options (``settings.db_name`` is ``omero_db_name``), roles, peers and
    what is resolved from them."""

    platform: Platform
    roles: frozenset[str]
    service_manager: str  # "systemd" or "supervisord"
    java_version: int
    # Peers, resolved from the inventory's groups.
    database_address: str | None  # where the server reaches PostgreSQL
    db_client_addresses: tuple[str, ...]  # server hosts PostgreSQL must accept
    db_listen_addresses: str
    web_server_addresses: tuple[str, ...]  # OMERO.server hosts the web connects to
    tls_mode: TlsMode  # this host's own nginx (OFF on a web node behind a proxy: the proxy does TLS)
    # On omero_web hosts behind omero_proxy hosts: the site as those serve it.
    front: Front | None = None
    # On omero_proxy hosts: (inventory name, nginx's address:port) of every omero_web host.
    web_nodes: tuple[tuple[str, str], ...] = ()
    # The primary's standby (on the primary), its slot (on both).
    standby_address: str | None = None
    standby_slot: str | None = None
    # The primary's and the standby's: the role the standby streams with.
    replication_user: str | None = None
    replication_password: str | None = None
    standby_synchronous: bool = False  # the primary waits for the standby at each commit
    # OMERO.server address kernels connect to (omero_analysis hosts).
    analysis_omero_host: str | None = None
    # Present for server hosts only.
    server_artifact: Artifact | None = None
    server_version: str | None = None
    ice_artifact: Artifact | None = None
    icepy_wheel: Artifact | None = None
    db_password: str | None = None
    root_password: str | None = None
    # Protects the PKCS#12 store of the server's Glacier2 TLS key (generated, never chosen).
    certificate_password: str | None = None
    # Backups: on hosts of omero_database or omero_server with a repository somewhere.
    backup_repositories: tuple[tuple[str, str], ...] = ()  # (name, restic repository)
    backup_password: str | None = None
    backup_ssh_key: str | None = None  # private key (OpenSSH) for the omero_backup host
    backup_remote: tuple[str, str] | None = None  # (address, account) on the omero_backup host
    # On the omero_backup host: (repository directory name, account, public key) of each OMERO host.
    backup_clients: tuple[tuple[str, str, str], ...] = ()
    # Shared sessions, when the inventory has an omero_redis host (topology.redis).
    redis_password: str | None = None  # the web nodes' Redis account's
    redis_address: str | None = None  # on web nodes: where Redis is
    web_secret_key: str | None = None  # on web nodes: Django's, the same on every node
    redis_bind: tuple[str, ...] = ()  # on the Redis host: its addresses Redis listens on
    redis_clients: tuple[str, ...] = ()  # on the Redis host: the web nodes it admits
    # A read-only cluster (deploys/readonly.py), each on the hosts it concerns.
    readonly_source: str | None = None  # read-only servers: the read-write server exporting the repository
    readonly_clients: tuple[str, ...] = ()  # the read-write server: the read-only servers it exports to
    balanced_servers: tuple[str, ...] = ()  # the balancer: the read-only servers
    readonly_balancer: str | None = None  # web hosts: the balancer, where read-only servers are reached

    @property
    def site_server_name(self) -> ServerNames:
        """The site's names: omero_nginx_server_name, the proxy's on a web node behind one."""
        return self.front.server_names if self.front else self.nginx_server_name

    @property
    def server_names(self) -> tuple[str, ...]:
        """The site's names, without '_'."""
        return self.site_server_name.names

    @property
    def any_host(self) -> bool:
        """Whether the site answers any Host ('_' among its names)."""
        return self.site_server_name.any_host

    @property
    def builds_icepy(self) -> bool:
        """Whether the IcePy wheel is built on this host (no omero_icepy_wheel given)."""
        return bool(self.roles & {SERVER, WEB, READONLY}) and self.icepy_wheel is None

    @property
    def server_readonly(self) -> bool:
        """Whether this host runs a read-only OMERO.server (omero_server_readonly)."""
        return READONLY in self.roles

    @property
    def backs_up(self) -> bool:
        return bool(self.backup_repositories)

    # -- the site as browsers and checks reach it -----------------------------------------------
    @property
    def https(self) -> bool:
        """Whether this host's nginx serves HTTPS."""
        return self.tls_mode.https

    @property
    def site_https(self) -> bool:
        """Whether browsers reach the site over HTTPS (a web node behind a proxy: the proxy's)."""
        return self.front.https if self.front else self.https

    @property
    def web_url(self) -> str:
        """gunicorn as reached from its host, e.g. http://127.0.0.1:4080 or http://[::1]:4080."""
        return self.web_bind.local_url

    @property
    def nginx_url(self) -> str:
        """nginx as reached from its host (every address: through 127.0.0.1)."""
        return self.nginx_listen.local_url

    @property
    def site_origins(self) -> tuple[str, ...]:
        """The site as browsers reach it (CSRF's trusted origins), one per server name."""
        return tuple(self.origin(name) for name in self.server_names)

    def origin(self, name: str) -> str:
        """``name`` as browsers reach nginx: scheme, name and a port other than the scheme's."""
        listen, https_listen = ((self.front.listen, self.front.https_listen) if self.front
                                else (self.nginx_listen, self.nginx_https_listen))
        scheme, port = ("https", https_listen.port) if self.site_https else ("http", listen.port)
        suffix = "" if port == {"https": 443, "http": 80}[scheme] else f":{port}"
        return f"{scheme}://{name}{suffix}"

    @property
    def web_allowed_hosts(self) -> tuple[str, ...]:
        """OMERO.web's allowed_hosts (Django's form: '.domain' for '*.domain')."""
        if self.any_host:
            return ("*",)
        return tuple(name[1:] if name.startswith("*.") else name for name in self.server_names)

    @property
    def check_name(self) -> str | None:
        """A Host name the site answers, for checks on the host; None: any."""
        if self.any_host:
            return None
        name = self.server_names[0]
        return f"check{name[1:]}" if name.startswith("*.") else name

    @property
    def proxy_url(self) -> str:
        """Where nginx reaches the hub's proxy."""
        return f"http://127.0.0.1:{self.analysis_port}"

    @property
    def hub_public_url(self) -> str:
        """The hub as browsers reach it: / of its own name."""
        return f"{self.origin(self.analysis_server_name)}/"

    @property
    def certificate_names(self) -> tuple[str, ...]:
        """The names the site's certificate is for: OMERO.web's, and the hub's on its hosts."""
        hub = (self.analysis_server_name,) if ANALYSIS in self.roles else ()
        return (*self.server_names, *hub)

    def nginx_check(self, path: str, status: int | None = None) -> str:
        """A curl command on the host fetching ``path`` from the site as a browser would: under
        its name, over HTTPS when on (any certificate: this checks nginx, not the trust);
        successful when answered (with ``status``: answered with that status)."""
        listener = (self.nginx_https_listen if self.https else self.nginx_listen).local
        scheme = "https" if self.https else "http"
        if self.check_name is None:
            url = shlex.quote(f"{scheme}://{listener}{path}")
        else:
            address = urlsplit(f"http://{listener}").hostname or ""
            resolve = f"{self.check_name}:{listener.port}:{f'[{address}]' if ':' in address else address}"
            url = f"--resolve {shlex.quote(resolve)} {shlex.quote(f'{scheme}://{self.check_name}:{listener.port}{path}')}"
        if status is None:
            return f"curl -gfsk -o /dev/null {url}"
        return f"curl -gsk -o /dev/null -w '%{{http_code}}' {url} | grep -qx {int(status)}"


def _replication(host, inventory, options: Options, platform: Platform, roles: frozenset[str],
                 db_password: str) -> dict[str, Any]:
    """The standby's and its primary's settings: the primary's choices, the role's password (kept
    under the primary's name); on the standby, its PostgreSQL checked against the primary's."""
    primary = inventory.get_group(DATABASE)[0]
    extra = {"standby_slot": topology.slot_name(inventory.get_group(STANDBY)[0].name),
             "replication_user": topology.primary_option(primary, "omero_db_replication_user"),
             "standby_synchronous": topology.primary_option(primary, "omero_db_standby_synchronous"),
             "replication_password": secrets.generated(options.secrets_dir, f"{primary.name}-db-replication")}
    if STANDBY not in roles:
        return extra
    theirs = detect(primary.get_fact(LinuxDistribution))
    if theirs.postgres_version != platform.postgres_version:
        raise OmeroDeployError(
            f"host {host.name} ({platform.label}) would run PostgreSQL {platform.postgres_version}, and its "
            f"primary {primary.name} ({theirs.label}) runs {theirs.postgres_version}: a standby needs the "
            f"primary's major version; put it on {theirs.label}")
    if not options.db_password_given and not os.environ.get("OMERO_DB_PASSWORD"):
        # After a take-over this host is the omero_database host: the password is found under its name.
        secrets.keep(options.secrets_dir, f"{host.name}-db-{options.db_user}", db_password)
    return extra


def load(host, inventory, platform: Platform, pid1: str) -> Settings:
    check = Checker(host.name)
    check.known(host.data.dict())
    options = parse_options({name: host.data.get(name, default) for name, default in DEFAULTS.items()},
                            platform, host.name)
    server_names = options.nginx_server_name.names
    roles = frozenset(group for group in ROLES if group in host.groups)
    peers = topology.peers(host, inventory, options)

    extra: dict[str, Any] = {}
    site_names = server_names  # what the certificate must cover
    if ANALYSIS in roles:
        if WEB not in roles:
            raise OmeroDeployError(
                f"host {host.name} is in {ANALYSIS} but not in {WEB}: JupyterHub is served by the "
                f"OMERO.web host's nginx (on a site of its own); put the host in {WEB} too")
        hub = options.analysis_server_name
        if hub is None:
            check.fail("omero_analysis_server_name",
                       "is required on omero_analysis hosts: JupyterHub is served at / of a name of "
                       "its own, apart from OMERO.web's (docs/analysis.md)")
        clash = hub_name_clash(hub, server_names)
        if clash is not None:
            relation = "is" if clash.lower() == hub else "is below"
            check.fail("omero_analysis_server_name",
                       f"{hub} {relation} omero_nginx_server_name's {clash}: the hub needs a name (an "
                       "origin) of its own, or what a user's server serves would run with a visitor's "
                       "OMERO.web session")
        site_names = (*server_names, hub)
        version, node = options.analysis_proxy_version, platform.nodejs_major
        if node < proxy_node_major(version):
            check.fail("omero_analysis_proxy_version",
                       f"configurable-http-proxy {version} needs Node.js {proxy_node_major(version)} or "
                       f"later, and {platform.label} packages Node.js {node}; put the analysis "
                       "environment on Ubuntu 24.04, Debian 12 or 13 or Rocky Linux 9")
        extra["analysis_omero_host"] = options.analysis_omero_host_given or peers.web_server_addresses[0]
    front = topology.front(host, inventory) if WEB in roles else None
    if PROXY in roles:
        if roles & {DATABASE, SERVER, ANALYSIS}:
            raise OmeroDeployError(f"host {host.name} is in {PROXY} and in another OMERO group: the front "
                                   "proxy is a host of its own")
        extra["web_nodes"] = topology.web_nodes(inventory)
        if not extra["web_nodes"]:
            raise OmeroDeployError(f"host {host.name} is in {PROXY} but the inventory has no {WEB} host")
    # Behind a proxy, a web node's nginx serves plain HTTP to the proxy alone.
    own_site = PROXY in roles or (WEB in roles and front is None)
    tls_mode = check.tls_mode(options, site_names) if own_site else TlsMode.OFF
    if roles & {SERVER, WEB, READONLY}:
        extra["icepy_wheel"] = check.optional_artifact(
            options, "omero_icepy_wheel", "omero_icepy_wheel_sha256", ICEPY_WHEEL,
            "zeroc_ice-3.6.5-<tags>.whl")
    if roles & {SERVER, READONLY}:
        if peers.database_address is None:
            raise OmeroDeployError(
                f"host {host.name} is in {SERVER if SERVER in roles else READONLY} but the inventory has no "
                f"{DATABASE} host"
            )
        server_artifact = check.required_artifact(
            options, "omero_server_artifact", "omero_server_sha256", SERVER_ZIP,
            "OMERO.server-<version>-ice36.zip")
        extra["server_artifact"] = server_artifact
        extra["server_version"] = SERVER_ZIP.fullmatch(server_artifact.filename).group(1)
        extra["ice_artifact"] = check.required_artifact(
            options, "omero_ice_artifact", "omero_ice_sha256", ICE_TARBALL,
            "<name of letters, digits and . _ + ->.tar.gz")
    if SERVER in roles:
        extra["root_password"] = check.password("omero_root_password", secrets.resolve(
            options.root_password_given, "OMERO_ROOT_PASSWORD", options.secrets_dir,
            f"{host.name}-omero-root"))
    if roles & {SERVER, READONLY}:
        extra["certificate_password"] = secrets.generated(options.secrets_dir,
                                                          f"{host.name}-omero-certificate")
    if roles & {SERVER, DATABASE, STANDBY, READONLY}:
        extra["db_password"] = check.password("omero_db_password", secrets.resolve(
            options.db_password_given, "OMERO_DB_PASSWORD", options.secrets_dir,
            f"{topology.database_host_name(inventory)}-db-{options.db_user}"))
    if STANDBY in roles or (DATABASE in roles and peers.standby_address):
        extra.update(_replication(host, inventory, options, platform, roles, extra["db_password"]))

    extra.update(topology.backups(host, inventory, options, roles))
    extra.update(topology.redis(host, inventory, options, roles))
    if "backup_repositories" in extra:
        extra["backup_password"] = check.password("omero_backup_password", secrets.resolve(
            options.backup_password_given, "OMERO_BACKUP_PASSWORD", options.secrets_dir,
            f"{host.name}-backup-repository"))
    manager = options.service_manager_choice
    if manager == "auto":
        manager = "systemd" if pid1 == "systemd" else "supervisord"
    elif manager == "systemd" and pid1 != "systemd":
        check.fail("omero_service_manager", f"systemd is not PID 1 here (PID 1 is {pid1!r})",
                   example="auto")
    if REDIS in roles and manager != "systemd":
        raise OmeroDeployError(f"host {host.name} is in {REDIS}, which needs systemd as PID 1 (PID 1 is "
                               f"{pid1!r}): Redis starts only once a unit has loaded its address filter")
    extra.update(readonly.cluster(host, inventory, roles, options, manager))
    if options.image_build and (manager != "supervisord" or ANALYSIS in roles or extra.get("backup_repositories")):
        check.fail("omero_image_build", "is for scripts/build-image's container only: supervisord, the groups "
                                        f"{DATABASE}, {WEB} and {SERVER}, no backups", example=False)

    return Settings(
        **vars(options),
        platform=platform,
        roles=roles,
        service_manager=manager,
        java_version=options.java_version_choice or platform.default_java,
        database_address=peers.database_address,
        db_client_addresses=peers.db_client_addresses,
        db_listen_addresses=peers.db_listen_addresses,
        web_server_addresses=peers.web_server_addresses,
        standby_address=peers.standby_address if DATABASE in roles else None,
        tls_mode=tls_mode,
        front=front,
        **extra,
    )
