"""Every deploy option: its name, default, meaning and a good value, in one place.

Options are read from the inventory's host or group data (``host.data``); the
README's options table is checked against this module by the tests. Paths,
users and ports follow OME's own Ansible roles unless noted. Each option's grammar
(what a value may be) is in ``settings``.
"""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Option:
    name: str
    default: Any
    doc: str
    example: Any = None  # a good value for error messages, where the default shows none

    @property
    def good_value(self) -> Any:
        return self.default if self.example is None else self.example


# The sha256 of an empty file: the form of a good value, for error messages.
_SHA256_EXAMPLE = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

OPTIONS: tuple[Option, ...] = (
    # -- the host and its services ----------------------------------------------------------
    Option("omero_address", None,
           "Address other hosts of the inventory use to reach this one (PostgreSQL for the "
           "server, Ice for the web). Default: the inventory name of an SSH host, `localhost` "
           "for `@local`/`@chroot`/`@docker` hosts.",
           example="omero.lab.example.org"),
    Option("omero_service_manager", "auto",
           "`systemd`, `supervisord`, or `auto`: systemd when it is PID 1, otherwise "
           "supervisord (containers, chroots)."),
    # -- reaching package indexes from a lab network ----------------------------------------
    Option("omero_extra_ca_certificates", [],
           "Local paths of PEM CA certificates to trust on the host (a TLS-inspecting proxy's "
           "CA); installed into the system trust store, which pip is pointed at too.",
           example=["/etc/ssl/lab/proxy-ca.crt"]),
    Option("omero_http_proxy", None,
           "Proxy URL for the package manager and pip (e.g. `http://proxy.lab:3128`). With a "
           "password in it, kept root's only (apt, pip); refused on Rocky/RHEL, where dnf would "
           "keep it in the world-readable dnf.conf.",
           example="http://proxy.lab.example.org:3128"),
    Option("omero_pip_index_url", None,
           "A PyPI mirror for pip (`index-url`), e.g. a devpi in the lab.",
           example="https://pypi.lab.example.org/simple"),
    Option("omero_npm_registry_url", None,
           "An npm registry mirror for npm (`registry`; omero_analysis hosts install "
           "configurable-http-proxy with it). npm trusts the system CA bundle and uses "
           "`omero_http_proxy` too.",
           example="https://npm.lab.example.org/"),
    # -- IcePy (the Python binding of Ice 3.6.5), needed by server and web -----------------
    Option("omero_icepy_wheel", None,
           "URL or local path of a zeroc-ice 3.6.5 wheel built for the host's OS and Python "
           "(e.g. Glencoe's). Unset: the wheel is built on the host from the PyPI sdist, "
           "patched for Python >= 3.11, once, and kept in `omero_wheel_dir`.",
           example="https://wheels.lab.example.org/zeroc_ice-3.6.5-cp312-cp312-linux_x86_64.whl"),
    Option("omero_icepy_wheel_sha256", None,
           "sha256 of `omero_icepy_wheel` (required with it).",
           example=_SHA256_EXAMPLE),
    Option("omero_wheel_dir", "/opt/omero/wheels",
           "Host directory holding the IcePy wheel, built or copied, reused by every venv."),
    # -- PostgreSQL (hosts in group omero_database) -----------------------------------------
    Option("omero_db_name", "omero", "Name of the OMERO database."),
    Option("omero_db_user", "omero", "PostgreSQL role that owns the OMERO database."),
    Option("omero_db_password", None,
           "Password of the database role. Unset: `$OMERO_DB_PASSWORD`, else generated on the "
           "first deploy and kept in `omero_secrets_dir` on the machine running pyinfra. "
           "Only its SCRAM verifier is sent to PostgreSQL."),
    Option("omero_db_port", 5432, "PostgreSQL port."),
    Option("omero_secrets_dir", "~/.local/share/omero-pyinfra/secrets",
           "Where generated passwords are kept (mode 0600) on the machine running pyinfra, one "
           "file per secret, so every later run and every host of the inventory agree. It and "
           "every directory above it must be yours or root's and writable by no one else."),
    # -- OMERO.server (hosts in group omero_server) -----------------------------------------
    Option("omero_server_artifact", None,
           "URL or local path of the OMERO.server zip, e.g. `OMERO.server-5.6.16-ice36.zip` "
           "(required for omero_server hosts; the version is read from its name).",
           example="https://downloads.example.org/omero/OMERO.server-5.6.16-ice36.zip"),
    Option("omero_server_sha256", None, "sha256 of `omero_server_artifact` (required with it).",
           example=_SHA256_EXAMPLE),
    Option("omero_ice_artifact", None,
           "URL or local path of the Ice 3.6.5 C++ binaries tarball for the host's OS (e.g. "
           "Glencoe's `Ice-3.6.5-ubuntu2404-x86_64.tar.gz`; required for omero_server hosts).",
           example="https://downloads.example.org/ice/Ice-3.6.5-ubuntu2404-x86_64.tar.gz"),
    Option("omero_ice_sha256", None, "sha256 of `omero_ice_artifact` (required with it).",
           example=_SHA256_EXAMPLE),
    Option("omero_ice_home", "/opt/ice-3.6.5", "Where the Ice binaries are unpacked."),
    Option("omero_java_version", None,
           "OpenJDK major version. Unset: 11 where the OS packages it (OME's recommendation), "
           "else 17 (Debian 12) or 21 (Debian 13).",
           example=17),
    Option("omero_server_basedir", "/opt/omero/server",
           "Server base: versioned directories, the `OMERO.server` symlink, `venv3`, `config`."),
    Option("omero_server_user", "omero-server", "System user running OMERO.server."),
    Option("omero_group", "omero", "Group shared by the OMERO users (in-place import)."),
    Option("omero_data_dir", "/OMERO", "The binary repository (`omero.data.dir`)."),
    Option("omero_root_password", None,
           "Password of OMERO's `root` user, set when the schema is created. Unset: "
           "`$OMERO_ROOT_PASSWORD`, else generated like `omero_db_password`."),
    Option("omero_server_config", {},
           "Further OMERO.server settings, `{key: value}`, written to the config directory "
           "(values are JSON-encoded when not strings).",
           example={"omero.jvmcfg.percent.blitz": 50}),
    Option("omero_py_version", "5.23.0", "omero-py release installed in the server and web venvs."),
    Option("omero_server_db_dump_dir", "/opt/omero/server/backups",
           "Where the database is dumped before an upgrade."),
    Option("omero_server_dropbox", False,
           "OMERO.dropbox: `omero-dropbox` in the server venv, so the server imports what users "
           "copy into their folder `<omero_data_dir>/DropBox/<OMERO user name>` (made by the "
           "sysadmin, see the README). Turned off again, the package is uninstalled; the DropBox "
           "directory and its files stay.",
           example=True),
    Option("omero_dropbox_version", "5.7.0", "omero-dropbox release (with `omero_server_dropbox`)."),
    # -- OMERO.web (hosts in group omero_web) -----------------------------------------------
    Option("omero_web_version", "5.33.2", "omero-web release."),
    Option("omero_web_basedir", "/opt/omero/web",
           "Web base: `venv3`, `config`, and `OMERO.web` (its OMERODIR)."),
    Option("omero_web_user", "omero-web", "System user running OMERO.web."),
    Option("omero_web_bind", "127.0.0.1:4080",
           "Where gunicorn listens (nginx proxies to it): a loopback address, since gunicorn trusts "
           "the headers nginx sets."),
    Option("omero_web_workers", None, "gunicorn workers, 1 to 64. Unset: 2 * CPUs + 1 (OME's advice).",
           example=5),
    Option("omero_web_server_host", "localhost",
           "OMERO.server address for a web host when the inventory has no omero_server host; "
           "otherwise the server group's hosts are used."),
    Option("omero_web_config", {},
           "Further OMERO.web settings, `{key: value}` (values are JSON-encoded when not strings).",
           example={"omero.web.ui.top_links": [["Data", "webindex", {"title": "Browse Data"}]]}),
    Option("omero_nginx_listen", "80", "nginx `listen` for the OMERO.web site (`[address:]port`)."),
    Option("omero_nginx_server_name", "_",
           "The site's names (nginx `server_name`, space-separated; `*.domain` allowed). Given "
           "names, requests for any other Host are refused and OMERO.web accepts only these "
           "(`allowed_hosts`); `_` (alone or among them) answers any Host.",
           example="omero.lab.example.org"),
    Option("omero_web_request_timeout", 120,
           "Seconds a request to OMERO.web may take: gunicorn's worker timeout and nginx's "
           "proxy timeouts."),
    Option("omero_nginx_client_max_body_size", "200m",
           "Largest request body nginx accepts (uploads of attachments; nginx size: `200m`, `1g`)."),
    # -- HTTPS (omero_web hosts) ----------------------------------------------------------
    Option("omero_nginx_tls", "auto",
           "`auto`: HTTPS when `omero_nginx_tls_certificate` is given, else HTTP only; "
           "`self-signed`: a certificate made on the host (for the server names and the host's "
           "addresses), kept, renewed by a deploy within `omero_nginx_tls_renew_days` of its "
           "expiry; `acme`: an ACME client (certbot) keeps the certificate on the host through "
           "`/usr/local/sbin/omero-tls-renewed` (a self-signed one until its first run); `off`.",
           example="self-signed"),
    Option("omero_nginx_tls_certificate", None,
           "Local path (machine running pyinfra) of the site's PEM certificate chain, leaf "
           "first; it turns HTTPS on. Checked before any host changes: it must cover every "
           "server name, match the key and not be expired.",
           example="/etc/ssl/lab/omero.lab.example.org.fullchain.pem"),
    Option("omero_nginx_tls_key", None,
           "Local path of the certificate's unencrypted PEM private key (required with it); "
           "copied 0600, never shown.",
           example="/etc/ssl/lab/omero.lab.example.org.key"),
    Option("omero_nginx_tls_renew_days", 30,
           "A self-signed certificate is made anew by a deploy this many days before it expires "
           "(it is valid 397 days)."),
    Option("omero_nginx_https_listen", "443",
           "nginx `listen` for HTTPS (`[address:]port`); `omero_nginx_listen` then only "
           "redirects to it (and answers ACME challenges)."),
    Option("omero_nginx_hsts", True,
           "Under HTTPS, send Strict-Transport-Security (two years): browsers then refuse "
           "plain HTTP to the site."),
    # -- OMERO.web apps -------------------------------------------------------------------
    Option("omero_web_apps", [],
           "OMERO.web apps to install and register, by PyPI name, each pinned to a tested "
           "release unless given as `name==version`: `omero-figure`, `omero-iviewer` (also made "
           "the default image viewer), `omero-parade`, `omero-mapr` (searches key-value "
           "annotations). An app taken out of the list is uninstalled and unregistered; "
           "OMERO.figure's PDF export script and its packages go on omero_server hosts.",
           example=["omero-figure", "omero-iviewer"]),
    # -- the analysis environment (hosts in omero_analysis, also in omero_web; docs/analysis.md)
    Option("omero_analysis_server_name", None,
           "The name JupyterHub is served at, `/` of its own site (required on omero_analysis "
           "hosts): a host name of its own, none of `omero_nginx_server_name`'s and not below "
           "one of its `*.` names, so that what a user's server serves never runs with a "
           "visitor's OMERO.web session. Same HTTPS settings and certificate as the OMERO.web "
           "site: a given certificate must cover it, a self-signed one names it.",
           example="jupyter.lab.example.org"),
    Option("omero_analysis_users_group", "jupyterhub-users",
           "The Unix group whose members may log in to JupyterHub (with their own account's "
           "password, through PAM). Created empty if missing: add the lab's users to it."),
    Option("omero_analysis_basedir", "/opt/omero/analysis",
           "Analysis base: the hub's venv `hub-venv`, the users' venv `user-venv`, "
           "configurable-http-proxy in `proxy-<version>`, `jupyterhub_config.py`."),
    Option("omero_analysis_port", 8000,
           "configurable-http-proxy listens on 127.0.0.1 at this port (nginx proxies to it), "
           "its API at the next port, the hub at the one after."),
    Option("omero_analysis_omero_host", None,
           "OMERO.server address preset for kernels (`OMERO_HOST`, with `OMERO_PORT` 4064 and "
           "`OMERO_SECURE`), so `ezomero.connect()` asks only for the user's name and password. "
           "Unset: the inventory's omero_server host, as for OMERO.web.",
           example="omero.lab.example.org"),
    Option("omero_jupyterhub_version", "6.1.1",
           "JupyterHub release, in the hub's venv and (`jupyterhub-singleuser`) the users'."),
    Option("omero_systemdspawner_version", "1.0.2",
           "jupyterhub-systemdspawner release in the hub's venv (under systemd: each user's "
           "server in a unit of its own, with the limits below)."),
    Option("omero_jupyterlab_version", "4.6.6", "JupyterLab release in the users' venv."),
    Option("omero_ezomero_version", "3.2.3", "ezomero release in the users' venv."),
    Option("omero_analysis_proxy_version", "5.1.0",
           "configurable-http-proxy release (from npm). 5.0 and 5.1 need Node.js 18, 5.2 and "
           "later 20: refused where the host's Node.js is older (Ubuntu 22.04 packages 12)."),
    Option("omero_analysis_memory_limit", "2G",
           "Memory one user's server and kernels may use together (systemd `MemoryMax`; `512M`, "
           "`4G`, 256M to 1024G); past it the kernel using most is killed, the server stays. "
           "Not enforced under supervisord."),
    Option("omero_analysis_cpu_limit", 1,
           "CPUs one user's server and kernels may use together (systemd `CPUQuota`, 1 = one "
           "core; 0.1 to 256). Not enforced under supervisord."),
    Option("omero_analysis_tasks_limit", 512,
           "Processes and threads one user's server may run (systemd `TasksMax`, 64 to 65536). "
           "Not enforced under supervisord."),
    # -- backups (hosts in omero_database or omero_server; docs/backup.md) ----------------
    Option("omero_backup_local_dir", None,
           "A restic repository on the host itself (best on another disk). Backups run when "
           "this is set or the inventory has an `omero_backup` host; both: into each.",
           example="/srv/omero-backup"),
    Option("omero_backup_remote_dir", "/srv/omero-backup",
           "On the `omero_backup` host: where each OMERO host's repository is kept "
           "(`<dir>/<inventory name>/repository`, the host's account shut in "
           "`<dir>/<inventory name>` by sshd), reached over SFTP."),
    Option("omero_backup_user", "omero-backup",
           "On the `omero_backup` host: the group of the OMERO hosts' accounts and the "
           "start of each one's name (`<user>-<inventory name>`; at most 16 characters). "
           "Each account may only use SFTP, with its host's own key, in its own repository."),
    Option("omero_backup_password", None,
           "Password of the host's backup repositories. Unset: `$OMERO_BACKUP_PASSWORD`, else "
           "generated like `omero_db_password` (keep `omero_secrets_dir` safe: without it no "
           "backup can be read)."),
    Option("omero_backup_schedule", "02:30",
           "When backups run: `HH:MM` (daily), `Mon HH:MM` (weekly) or `every 30m` / "
           "`every 6h` (host time)."),
    Option("omero_backup_check_schedule", "Sun 04:30",
           "When the repositories are checked (`restic check`); same forms as "
           "`omero_backup_schedule`."),
    Option("omero_backup_check_read_data", 10,
           "Percent of the backed-up data each check reads back and verifies (0: structure "
           "only, 100: everything)."),
    Option("omero_backup_keep", {"daily": 7, "weekly": 5, "monthly": 12},
           "How many daily, weekly and monthly backups to keep (`restic forget --keep-*`); "
           "snapshots taken before an upgrade are kept until removed by hand."),
    Option("omero_backup_link_targets", True,
           "Back up what symlinks in `omero_data_dir` point to outside it (in-place imports), "
           "where root can read it; what is not backed up is named in `omero-backup status` and "
           "the log.",
           example=False),
)

DEFAULTS: dict[str, Any] = {option.name: option.default for option in OPTIONS}
