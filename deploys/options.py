"""Every deploy option, one row each: its name, grammar, default, documentation and a good value.

``Options`` is the table and the parsed options' type at once: a row is a typed field whose
name is the option's without ``omero_`` (unless ``name=`` says otherwise), made by
``option(grammar, default, doc, example=...)``. Options are read from the inventory's host or
group data (``host.data``); ``load()`` (settings) parses every row with its grammar before any
host changes. Paths, users and ports follow OME's own Ansible roles unless noted.
The README's options table and docs/malformed-input.md's are generated from it
(``python -m deploys.option_docs --write``).
"""

from dataclasses import dataclass
from typing import Any

from .grammar import (
    bounded,
    one_of,
    optional,
    parse_address,
    parse_config,
    parse_cpus,
    parse_endpoint,
    parse_hub_name,
    parse_keep,
    parse_listen,
    parse_memory,
    parse_nginx_size,
    parse_percent,
    parse_port,
    parse_release,
    parse_schedule,
    parse_server_names,
    parse_text,
    parse_url,
    parse_web_apps,
)
from .names import parse_account, parse_ca_files, parse_path, parse_pg_name, parse_secrets_dir
from .option_rows import (
    ACCOUNTS,
    ARTIFACT,
    PASSWORD,
    ROOT_TREE,
    SERVICE_DIR,
    SHA,
    SHA256_EXAMPLE,
    TLS_FILE,
    USERS,
    Option,
    option,
    rows_of,
)
from .values import Endpoint, ServerNames
from .webapps import WebApp


@dataclass(frozen=True)
class Options:
    """One host's options, parsed: the table of every option."""

    def value(self, name: str) -> Any:
        """The option ``name`` (``omero_...``), parsed: for checks that name options."""
        return getattr(self, BY_NAME[name].field)

    # -- the host and its services ----------------------------------------------------------
    address: str | None = option(optional(parse_address), None,
        "Address other hosts of the inventory use to reach this one (PostgreSQL for the "
        "server, Ice for the web). Default: the inventory name of an SSH host, `localhost` "
        "for `@local`/`@chroot`/`@docker` hosts.",
        example="omero.lab.example.org",
        checks="an IP address on omero_redis and (with one) omero_web hosts: Redis and nftables use it")
    service_manager_choice: str = option(one_of("auto", "systemd", "supervisord"), "auto",
        "`systemd`, `supervisord`, or `auto`: systemd when it is PID 1, otherwise "
        "supervisord (containers, chroots).",
        name="omero_service_manager",
        checks="`systemd` only where systemd is PID 1")
    image_build: bool = option(one_of(True, False), False,
        "`true` only where `scripts/build-image` deploys: the supervisord programs and the nginx site "
        "read the ports, users and paths that a container of the image sets at each start "
        "(supervisord's environment, files nginx includes) instead of holding them "
        "(the README's \"Container image\").",
        checks="only with supervisord, without analysis or backups")
    # -- reaching package indexes from a lab network ----------------------------------------
    extra_ca_certificates: tuple[str, ...] = option(parse_ca_files, [],
        "Local paths of PEM CA certificates to trust on the host (a TLS-inspecting proxy's "
        "CA); installed into the system trust store, which pip is pointed at too.",
        example=["/etc/ssl/lab/proxy-ca.crt"])
    http_proxy: str | None = option(optional(parse_url), None,
        "Proxy URL for the package manager and pip (e.g. `http://proxy.lab:3128`). With a "
        "password in it, kept root's only (apt, pip); refused on Rocky/RHEL, where dnf would "
        "keep it in the world-readable dnf.conf.",
        example="http://proxy.lab.example.org:3128",
        checks="no password in it on Rocky/RHEL (dnf keeps it in the world-readable dnf.conf)")
    pip_index_url: str | None = option(optional(parse_url), None,
        "A PyPI mirror for pip (`index-url`), e.g. a devpi in the lab.",
        example="https://pypi.lab.example.org/simple")
    npm_registry_url: str | None = option(optional(parse_url), None,
        "An npm registry mirror for npm (`registry`; omero_analysis hosts install "
        "configurable-http-proxy with it). npm trusts the system CA bundle and uses "
        "`omero_http_proxy` too.",
        example="https://npm.lab.example.org/")
    # -- IcePy (the Python binding of Ice 3.6.5), needed by server and web -----------------
    # Artifacts and passwords: their type here, the rest in load() for the hosts needing them.
    icepy_wheel_source: str | None = option(optional(parse_text), None,
        "URL or local path of a zeroc-ice 3.6.5 wheel built for the host's OS and Python "
        "(e.g. Glencoe's). Unset: the wheel is built on the host from the PyPI sdist, "
        "patched for Python >= 3.11, once, and kept in `omero_wheel_dir`.",
        example="https://wheels.lab.example.org/zeroc_ice-3.6.5-cp312-cp312-linux_x86_64.whl",
        name="omero_icepy_wheel",
        checks=ARTIFACT.format("`zeroc_ice-3.6.5-<tags>.whl`").replace("; required on omero_server hosts", ""))
    icepy_wheel_sha256: str | None = option(optional(parse_text), None,
        "sha256 of `omero_icepy_wheel` (required with it).",
        example=SHA256_EXAMPLE,
        checks=SHA)
    wheel_dir: str = option(parse_path, "/opt/omero/wheels",
        "Host directory holding the IcePy wheel, built or copied, reused by every venv.",
        checks=ROOT_TREE)
    # -- PostgreSQL (hosts in group omero_database) -----------------------------------------
    db_name: str = option(parse_pg_name, "omero", "Name of the OMERO database.")
    db_user: str = option(parse_pg_name, "omero", "PostgreSQL role that owns the OMERO database.")
    db_password_given: str | None = option(optional(parse_text), None,
        "Password of the database role. Unset: `$OMERO_DB_PASSWORD`, else generated on the "
        "first deploy and kept in `omero_secrets_dir` on the machine running pyinfra. "
        "Only its SCRAM verifier is sent to PostgreSQL.",
        name="omero_db_password",
        checks=PASSWORD)
    db_port: int = option(parse_port, 5432, "PostgreSQL port.")
    db_replication_user: str = option(parse_pg_name, "omero_replication",
        "With an `omero_database_standby` host: the PostgreSQL role it streams from the primary with "
        "(REPLICATION, its password generated and kept like `omero_db_password`). The primary's value "
        "counts.",
        checks="not `omero_db_user`")
    db_standby_synchronous: bool = option(one_of(True, False), True,
        "With an `omero_database_standby` host: `true`, a commit on the primary returns only once the "
        "standby has the transaction on disk, so a take-over loses nothing committed, but while the "
        "standby is down or behind every commit waits (OMERO stops writing); `false`, asynchronous: "
        "commits never wait, and a take-over loses what the standby had not received (its lag). The "
        "primary's value counts.")
    secrets_dir: str = option(parse_secrets_dir, "~/.local/share/omero-pyinfra/secrets",
        "Where generated passwords are kept (mode 0600) on the machine running pyinfra, one "
        "file per secret, so every later run and every host of the inventory agree. It and "
        "every directory above it must be yours or root's and writable by no one else.")
    # -- OMERO.server (hosts in group omero_server) -----------------------------------------
    server_artifact_source: str | None = option(optional(parse_text), None,
        "URL or local path of the OMERO.server zip, e.g. `OMERO.server-5.6.16-ice36.zip` "
        "(required for omero_server hosts; the version is read from its name).",
        example="https://downloads.example.org/omero/OMERO.server-5.6.16-ice36.zip",
        name="omero_server_artifact",
        checks=ARTIFACT.format("`OMERO.server-<version>-ice36.zip`")
        + "; on omero_server_readonly hosts, the omero_server host's version")
    server_sha256: str | None = option(optional(parse_text), None,
        "sha256 of `omero_server_artifact` (required with it).",
        example=SHA256_EXAMPLE,
        checks=SHA)
    ice_artifact_source: str | None = option(optional(parse_text), None,
        "URL or local path of the Ice 3.6.5 C++ binaries tarball for the host's OS (e.g. "
        "Glencoe's `Ice-3.6.5-ubuntu2404-x86_64.tar.gz`; required for omero_server hosts).",
        example="https://downloads.example.org/ice/Ice-3.6.5-ubuntu2404-x86_64.tar.gz",
        name="omero_ice_artifact",
        checks=ARTIFACT.format("`<letters, digits and . _ + ->.tar.gz`"))
    ice_sha256: str | None = option(optional(parse_text), None, "sha256 of `omero_ice_artifact` (required with it).",
        example=SHA256_EXAMPLE,
        checks=SHA)
    ice_home: str = option(parse_path, "/opt/ice-3.6.5", "Where the Ice binaries are unpacked.",
        checks=ROOT_TREE)
    java_version_choice: int | None = option(optional(one_of(11, 17, 21)), None,
        "OpenJDK major version. Unset: 11 where the OS packages it (OME's recommendation), "
        "else 17 (Debian 12) or 21 (Debian 13).",
        example=17,
        name="omero_java_version")
    server_basedir: str = option(parse_path, "/opt/omero/server",
        "Server base: versioned directories, the `OMERO.server` symlink, `venv3`, `config`.",
        checks=ROOT_TREE)
    server_user: str = option(parse_account, "omero-server", "System user running OMERO.server.",
        checks=USERS)
    group: str = option(parse_account, "omero", "Group shared by the OMERO users (in-place import).",
        checks=ACCOUNTS + "; on the host, not a login account's group")
    data_dir: str = option(parse_path, "/OMERO", "The binary repository (`omero.data.dir`).",
        checks=SERVICE_DIR)
    root_password_given: str | None = option(optional(parse_text), None,
        "Password of OMERO's `root` user, set when the schema is created. Unset: "
        "`$OMERO_ROOT_PASSWORD`, else generated like `omero_db_password`.",
        name="omero_root_password",
        checks=PASSWORD)
    server_config: dict[str, str] = option(parse_config, {},
        "Further OMERO.server settings, `{key: value}`, written to the config directory "
        "(values are JSON-encoded when not strings).",
        example={"omero.jvmcfg.percent.blitz": 50})
    py_version: str = option(parse_release, "5.23.0", "omero-py release installed in the server and web venvs.")
    server_db_dump_dir: str = option(parse_path, "/opt/omero/server/backups",
        "Where the database is dumped before an upgrade.",
        checks=SERVICE_DIR)
    server_dropbox: bool = option(one_of(True, False), False,
        "OMERO.dropbox: `omero-dropbox` in the server venv, so the server imports what users "
        "copy into their folder `<omero_data_dir>/DropBox/<OMERO user name>` (made by the "
        "sysadmin, see the README). Turned off again, the package is uninstalled; the DropBox "
        "directory and its files stay.",
        example=True)
    dropbox_version: str = option(parse_release, "5.7.0", "omero-dropbox release (with `omero_server_dropbox`).")
    # -- read-only OMERO.server nodes (omero_server_readonly, omero_ice_balancer) ---------------
    group_gid: int | None = option(optional(bounded(100, 59999)), None,
        "Number of `omero_group` where the deploy creates it. Required, and the same, on the omero_server host and "
        "every omero_server_readonly host: they share the repository over NFS, which checks the group by number. "
        "Unset: the system picks one.", example=546,
        checks="given on the omero_server and omero_server_readonly hosts, the same on all; a group that exists "
               "with another number is refused on the host")
    web_readonly: str = option(one_of("offered", "only"), "offered",
        "With an `omero_ice_balancer` host, what OMERO.web connects to: `offered`, the read-write `omero_server` "
        "host first (the login page's default), the read-only servers behind the balancer second "
        "(`omero.web.server_list` ids 1 and 2); `only`, the balancer alone (a public, read-only site: IDR's shape).",
        example="only", checks="`only` needs an omero_ice_balancer host in the inventory")
    ice_balancer_timeout: int = option(bounded(60, 86400), 600,
        "Seconds haproxy keeps an idle Ice connection to a read-only server open (client and server side).")
    # -- OMERO.web (hosts in group omero_web) -----------------------------------------------
    web_version: str = option(parse_release, "5.33.2", "omero-web release.")
    web_basedir: str = option(parse_path, "/opt/omero/web",
        "Web base: `venv3`, `config`, and `OMERO.web` (its OMERODIR).",
        checks=ROOT_TREE)
    web_user: str = option(parse_account, "omero-web", "System user running OMERO.web.",
        checks=USERS)
    web_bind: Endpoint = option(parse_endpoint, "127.0.0.1:4080",
        "Where gunicorn listens (nginx proxies to it): a loopback address, since gunicorn trusts "
        "the headers nginx sets.",
        checks="a loopback address (`127.0.0.0/8`, `::1`, `localhost`): gunicorn trusts the headers nginx sets")
    # Each worker holds a Django process (about 100 MB): more would starve the host.
    web_workers: int | None = option(optional(bounded(1, 64)), None,
        "gunicorn workers, 1 to 64. Unset: 2 * CPUs + 1 (OME's advice).",
        example=5)
    web_server_host: str = option(parse_address, "localhost",
        "OMERO.server address for a web host when the inventory has no omero_server host; "
        "otherwise the server group's hosts are used.")
    web_config: dict[str, str] = option(parse_config, {},
        "Further OMERO.web settings, `{key: value}` (values are JSON-encoded when not strings).",
        example={"omero.web.ui.top_links": [["Data", "webindex", {"title": "Browse Data"}]]})
    nginx_listen: Endpoint = option(parse_listen, "80", "nginx `listen` for the OMERO.web site (`[address:]port`).",
        checks="not omero_web_bind's port")
    nginx_server_name: ServerNames = option(parse_server_names, "_",
        "The site's names (nginx `server_name`, space-separated; `*.domain` allowed). Given "
        "names, requests for any other Host are refused and OMERO.web accepts only these "
        "(`allowed_hosts`); `_` (alone or among them) answers any Host.",
        example="omero.lab.example.org")
    web_request_timeout: int = option(bounded(10, 3600), 120,
        "Seconds a request to OMERO.web may take: gunicorn's worker timeout and nginx's "
        "proxy timeouts.")
    nginx_client_max_body_size: str = option(parse_nginx_size, "200m",
        "Largest request body nginx accepts (uploads of attachments; nginx size: `200m`, `1g`).")
    # -- HTTPS (omero_web hosts) ----------------------------------------------------------
    nginx_tls: str = option(one_of("auto", "off", "self-signed", "acme"), "auto",
        "`auto`: HTTPS when `omero_nginx_tls_certificate` is given, else HTTP only; "
        "`self-signed`: a certificate made on the host (for the server names and the host's "
        "addresses), kept, renewed by a deploy within `omero_nginx_tls_renew_days` of its "
        "expiry; `acme`: an ACME client (certbot) keeps the certificate on the host through "
        "`/usr/local/sbin/omero-tls-renewed` (a self-signed one until its first run); `off`.",
        example="self-signed",
        checks="`auto` when omero_nginx_tls_certificate is given")
    # Local files: checked in load(), with the server names they must cover.
    nginx_tls_certificate: str | None = option(optional(parse_text), None,
        "Local path (machine running pyinfra) of the site's PEM certificate chain, leaf "
        "first; it turns HTTPS on. Checked before any host changes: it must cover every "
        "server name, match the key and not be expired.",
        example="/etc/ssl/lab/omero.lab.example.org.fullchain.pem",
        checks=TLS_FILE)
    nginx_tls_key: str | None = option(optional(parse_text), None,
        "Local path of the certificate's unencrypted PEM private key (required with it); "
        "copied 0600, never shown.",
        example="/etc/ssl/lab/omero.lab.example.org.key",
        checks=TLS_FILE)
    nginx_tls_renew_days: int = option(bounded(1, 365), 30,
        "A self-signed certificate is made anew by a deploy this many days before it expires "
        "(it is valid 397 days).")
    nginx_https_listen: Endpoint = option(parse_listen, "443",
        "nginx `listen` for HTTPS (`[address:]port`); `omero_nginx_listen` then only "
        "redirects to it (and answers ACME challenges).",
        checks="under HTTPS, neither omero_web_bind's port nor omero_nginx_listen's")
    nginx_hsts: bool = option(one_of(True, False), True,
        "Under HTTPS, send Strict-Transport-Security (two years): browsers then refuse "
        "plain HTTP to the site.")
    # -- the front proxy (hosts in omero_proxy; the README's "Several hosts") --------------
    proxy_cache_static_size: str = option(parse_nginx_size, "1g",
        "On omero_proxy hosts: the largest the cache of OMERO.web's static files may grow "
        "(nginx size: `512m`, `2g`); shared by every user (the files are public).")
    proxy_cache_thumbnails_size: str = option(parse_nginx_size, "1g",
        "On omero_proxy hosts: the largest the cache of thumbnails may grow (nginx size).")
    proxy_cache_images_size: str = option(parse_nginx_size, "4g",
        "On omero_proxy hosts: the largest the cache of rendered images (planes, regions, "
        "tiles, birds-eye views) may grow (nginx size).")
    proxy_cache_minutes: int = option(bounded(1, 1440), 10,
        "On omero_proxy hosts: minutes a cached response is served without asking OMERO.web "
        "again (a changed rendering or an upgrade's static files show after at most this).")
    proxy_cache_shared: bool = option(one_of(True, False), False,
        "On omero_proxy hosts: `false` keeps cached thumbnails and rendered images per OMERO.web "
        "session (a user is only ever served what was rendered for that session; requests "
        "without a session are not cached). `true` shares them across users: only for a site "
        "whose every image is public (as the IDR), or a user would be served another's images.",
        example=True)
    proxy_maintenance: bool = option(one_of(True, False), False,
        "On omero_proxy hosts: `true` answers every request with a maintenance page (503, "
        "`Retry-After`), ACME challenges still served; `false` serves OMERO.web again.",
        example=True)
    # -- OMERO.web apps -------------------------------------------------------------------
    web_apps: tuple[WebApp, ...] = option(parse_web_apps, [],
        "OMERO.web apps to install and register, by PyPI name, each pinned to a tested "
        "release unless given as `name==version`: `omero-figure`, `omero-iviewer` (also made "
        "the default image viewer), `omero-parade`, `omero-mapr` (searches key-value "
        "annotations). An app taken out of the list is uninstalled and unregistered; "
        "OMERO.figure's PDF export script and its packages go on omero_server hosts.",
        example=["omero-figure", "omero-iviewer"])
    # -- the analysis environment (hosts in omero_analysis, also in omero_web; docs/analysis.md)
    analysis_server_name: str | None = option(optional(parse_hub_name), None,
        "The name JupyterHub is served at, `/` of its own site (required on omero_analysis "
        "hosts): a host name of its own, none of `omero_nginx_server_name`'s and not below "
        "one of its `*.` names, so that what a user's server serves never runs with a "
        "visitor's OMERO.web session. Same HTTPS settings and certificate as the OMERO.web "
        "site: a given certificate must cover it, a self-signed one names it.",
        example="jupyter.lab.example.org",
        checks=("required on omero_analysis hosts; neither one of omero_nginx_server_name's names "
                "nor below one of its `*.` names"))
    analysis_users_group: str = option(parse_account, "jupyterhub-users",
        "The Unix group whose members may log in to JupyterHub (with their own account's "
        "password, through PAM). Created empty if missing: add the lab's users to it.",
        checks=ACCOUNTS)
    analysis_basedir: str = option(parse_path, "/opt/omero/analysis",
        "Analysis base: the hub's venv `hub-venv`, the users' venv `user-venv`, "
        "configurable-http-proxy in `proxy-<version>`, `jupyterhub_config.py`.",
        checks=ROOT_TREE)
    # Three ports in a row (proxy, its API, the hub), unprivileged.
    analysis_port: int = option(bounded(1024, 65533), 8000,
        "configurable-http-proxy listens on 127.0.0.1 at this port (nginx proxies to it), "
        "its API at the next port, the hub at the one after.",
        checks=("its three ports (proxy, its API, the hub) none of omero_web_bind's, omero_nginx_listen's "
                "or (HTTPS) omero_nginx_https_listen's"))
    analysis_omero_host_given: str | None = option(optional(parse_address), None,
        "OMERO.server address preset for kernels (`OMERO_HOST`, with `OMERO_PORT` 4064 and "
        "`OMERO_SECURE`), so `ezomero.connect()` asks only for the user's name and password. "
        "Unset: the inventory's omero_server host, as for OMERO.web.",
        example="omero.lab.example.org",
        name="omero_analysis_omero_host")
    jupyterhub_version: str = option(parse_release, "6.1.1",
        "JupyterHub release, in the hub's venv and (`jupyterhub-singleuser`) the users'.")
    systemdspawner_version: str = option(parse_release, "1.0.2",
        "jupyterhub-systemdspawner release in the hub's venv (under systemd: each user's "
        "server in a unit of its own, with the limits below).")
    jupyterlab_version: str = option(parse_release, "4.6.6", "JupyterLab release in the users' venv.")
    ezomero_version: str = option(parse_release, "3.2.3", "ezomero release in the users' venv.")
    analysis_proxy_version: str = option(parse_release, "5.1.0",
        "configurable-http-proxy release (from npm). 5.0 and 5.1 need Node.js 18, 5.2 and "
        "later 20: refused where the host's Node.js is older (Ubuntu 22.04 packages 12).",
        checks="one the host's Node.js runs (5.0, 5.1: Node.js 18; 5.2 on: 20; Ubuntu 22.04 has 12)")
    analysis_memory_limit: str = option(parse_memory, "2G",
        "Memory one user's server and kernels may use together (systemd `MemoryMax`; `512M`, "
        "`4G`, 256M to 1024G); past it the kernel using most is killed, the server stays. "
        "Not enforced under supervisord.")
    analysis_cpu_limit: float = option(parse_cpus, 1,
        "CPUs one user's server and kernels may use together (systemd `CPUQuota`, 1 = one "
        "core; 0.1 to 256). Not enforced under supervisord.")
    analysis_tasks_limit: int = option(bounded(64, 65536), 512,
        "Processes and threads one user's server may run (systemd `TasksMax`, 64 to 65536). "
        "Not enforced under supervisord.")
    # -- backups (hosts in omero_database or omero_server; docs/backup.md) ----------------
    backup_local_dir: str | None = option(optional(parse_path), None,
        "A restic repository on the host itself (best on another disk). Backups run when "
        "this is set or the inventory has an `omero_backup` host; both: into each.",
        example="/srv/omero-backup",
        checks=SERVICE_DIR)
    backup_remote_dir: str = option(parse_path, "/srv/omero-backup",
        "On the `omero_backup` host: where each OMERO host's repository is kept "
        "(`<dir>/<inventory name>/repository`, the host's account shut in "
        "`<dir>/<inventory name>` by sshd), reached over SFTP.")
    backup_user: str = option(parse_account, "omero-backup",
        "On the `omero_backup` host: the group of the OMERO hosts' accounts and the "
        "start of each one's name (`<user>-<inventory name>`; at most 16 characters). "
        "Each account may only use SFTP, with its host's own key, in its own repository.",
        checks=ACCOUNTS + "; at most 16 characters (it begins an account name per OMERO host)")
    backup_password_given: str | None = option(optional(parse_text), None,
        "Password of the host's backup repositories. Unset: `$OMERO_BACKUP_PASSWORD`, else "
        "generated like `omero_db_password` (keep `omero_secrets_dir` safe: without it no "
        "backup can be read).",
        name="omero_backup_password",
        checks=PASSWORD)
    backup_schedule: str = option(parse_schedule, "02:30",
        "When backups run: `HH:MM` (daily), `Mon HH:MM` (weekly) or `every 30m` / "
        "`every 6h` (host time).")
    backup_check_schedule: str = option(parse_schedule, "Sun 04:30",
        "When the repositories are checked (`restic check`); same forms as "
        "`omero_backup_schedule`.")
    backup_check_read_data: int = option(parse_percent, 10,
        "Percent of the backed-up data each check reads back and verifies (0: structure "
        "only, 100: everything).")
    backup_keep: dict[str, int] = option(parse_keep, {"daily": 7, "weekly": 5, "monthly": 12},
        "How many daily, weekly and monthly backups to keep (`restic forget --keep-*`); "
        "snapshots taken before an upgrade are kept until removed by hand.")
    backup_link_targets: bool = option(one_of(True, False), True,
        "Back up what symlinks in `omero_data_dir` point to outside it (in-place imports), "
        "where root can read it; what is not backed up is named in `omero-backup status` and "
        "the log.",
        example=False)


OPTIONS: tuple[Option, ...] = rows_of(Options)
# Options this deploy had and no longer has: what to do instead.
REMOVED: dict[str, str] = {
    "omero_analysis_path": "was removed: JupyterHub is served at / of a name of its own now (its "
                           "own origin, apart from OMERO.web's); remove it and set "
                           "omero_analysis_server_name (docs/analysis.md)",
}
BY_NAME: dict[str, Option] = {row.name: row for row in OPTIONS}
DEFAULTS: dict[str, Any] = {row.name: row.default for row in OPTIONS}
EXAMPLES: dict[str, Any] = {row.name: row.good_value for row in OPTIONS}

