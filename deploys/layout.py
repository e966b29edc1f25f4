"""Where everything is on a host, named once: the deploy's fixed directories, and every path
derived from the options (``Layout``, which ``Settings`` is)."""

import posixpath
import re

from .platform import Platform

# The deploy's own fixed directories (root's).
STATE_DIR = "/var/lib/omero-pyinfra"
DOWNLOAD_DIR = "/opt/omero/downloads"
HUB_STATE_DIR = "/var/lib/omero-jupyterhub"
BACKUP_STATE_DIR = "/var/lib/omero-backup"
BACKUP_CACHE_DIR = "/var/cache/omero-backup"
ACME_WEBROOT = "/var/www/omero-acme"
PROXY_CACHE_DIR = "/var/cache/omero-proxy"
MAINTENANCE_DIR = "/var/www/omero-maintenance"
DEPLOY_DIRS = (STATE_DIR, DOWNLOAD_DIR, HUB_STATE_DIR, BACKUP_STATE_DIR, BACKUP_CACHE_DIR, ACME_WEBROOT,
               PROXY_CACHE_DIR, MAINTENANCE_DIR)
# What the deploy keeps in the server base: a service directory may go beside these, not in them.
SERVER_BASE_ENTRIES = ("OMERO.server", "venv3", "config", "downloads")
SERVER_VERSIONS = "OMERO.server-"  # each version unpacked beside the symlink


def home_of(user: str) -> str:
    """The home the deploy gives a service account it makes."""
    return f"/var/lib/{user}"


class Layout:
    """Paths on the host, from the options that place them (declared here, set by Settings)."""

    server_basedir: str
    server_user: str
    server_version: str | None
    data_dir: str
    web_basedir: str
    web_user: str
    analysis_basedir: str
    analysis_proxy_version: str
    platform: Platform

    home_of = staticmethod(home_of)

    # -- the deploy's own records -------------------------------------------------------------
    @property
    def state_dir(self) -> str:
        """The deploy's own records on the host: when each step last completed."""
        return STATE_DIR

    @property
    def curl_proxy_config(self) -> str:
        """curl's proxy (it may carry credentials): root's only."""
        return f"{self.state_dir}/curl-proxy.conf"

    def stamp(self, step: str) -> str:
        """The file whose mtime says when ``step`` (a restart, a reload) last completed."""
        return f"{self.state_dir}/{step}.done"

    @property
    def download_dir(self) -> str:
        """Where the Ice tarball is put."""
        return DOWNLOAD_DIR

    @property
    def replication_command(self) -> str:
        """Shows the standby's replication and lag; promotes the standby."""
        return "/usr/local/sbin/omero-database-replication"

    # -- OMERO.server ---------------------------------------------------------------------------
    @property
    def server_dir(self) -> str:
        return f"{self.server_basedir}/{SERVER_VERSIONS}{self.server_version}-ice36"

    @property
    def server_symlink(self) -> str:
        return f"{self.server_basedir}/OMERO.server"

    @property
    def server_venv(self) -> str:
        return f"{self.server_basedir}/venv3"

    @property
    def server_omero(self) -> str:
        """The server's ``omero`` command (run with OMERODIR=server_symlink)."""
        return f"{self.server_venv}/bin/omero"

    @property
    def server_config_dir(self) -> str:
        return f"{self.server_basedir}/config"

    @property
    def server_download_dir(self) -> str:
        """Where the OMERO.server zip is put."""
        return f"{self.server_basedir}/downloads"

    @property
    def server_home(self) -> str:
        return home_of(self.server_user)

    @property
    def server_certs_dir(self) -> str:
        """Glacier2's TLS key, certificate and PKCS#12 store: the server user's alone, and
        outside the binary repository."""
        return f"{self.server_home}/certs"

    @property
    def server_certificate_password_file(self) -> str:
        return f"{self.server_home}/.certificate-password"

    @property
    def server_memo_dir(self) -> str:
        """A read-only server's Bio-Formats memo files (its repository is not writable)."""
        return f"{self.server_home}/BioFormatsCache"

    @property
    def dropbox_dir(self) -> str:
        """Watched by OMERO.dropbox: a folder in it per OMERO user, named as the user."""
        return f"{self.data_dir}/DropBox"

    # -- OMERO.web ------------------------------------------------------------------------------
    @property
    def web_omerodir(self) -> str:
        return f"{self.web_basedir}/OMERO.web"

    @property
    def web_venv(self) -> str:
        return f"{self.web_basedir}/venv3"

    @property
    def web_omero(self) -> str:
        """The web's ``omero`` command (run with OMERODIR=web_omerodir)."""
        return f"{self.web_venv}/bin/omero"

    @property
    def web_gunicorn(self) -> str:
        return f"{self.web_venv}/bin/gunicorn"

    @property
    def web_config_dir(self) -> str:
        return f"{self.web_basedir}/config"

    @property
    def web_static_root(self) -> str:
        return f"{self.web_omerodir}/var/static"

    @property
    def web_home(self) -> str:
        return home_of(self.web_user)

    # -- Redis (omero_redis) -------------------------------------------------------------------
    @property
    def redis_filter_dir(self) -> str:
        return "/etc/omero-redis"

    @property
    def redis_filter_file(self) -> str:
        """The nftables table admitting only the web nodes to Redis's port (root's)."""
        return f"{self.redis_filter_dir}/nftables.conf"

    # -- nginx's TLS ----------------------------------------------------------------------------
    @property
    def tls_dir(self) -> str:
        return "/etc/nginx/omero-tls"

    @property
    def tls_certificate_path(self) -> str:
        """The site's certificate chain on the host, whichever way it got there."""
        return f"{self.tls_dir}/site.crt"

    @property
    def tls_key_path(self) -> str:
        return f"{self.tls_dir}/site.key"

    @property
    def tls_renewed_hook(self) -> str:
        """Installs a renewed certificate and reloads nginx (certbot's --deploy-hook)."""
        return "/usr/local/sbin/omero-tls-renewed"

    @property
    def acme_webroot(self) -> str:
        """Where an ACME client's HTTP challenges are served from (certbot --webroot -w)."""
        return ACME_WEBROOT

    # -- the front proxy (omero_proxy hosts) -----------------------------------------------------
    @property
    def proxy_site_path(self) -> str:
        """The front proxy's nginx site, where an OMERO.web host has its own."""
        return f"{posixpath.dirname(self.platform.nginx_site_path)}/omero-proxy.conf"

    @property
    def proxy_nodes_dir(self) -> str:
        """One file per web node, its line of the proxy's upstream (``down`` while drained)."""
        return "/etc/nginx/omero-proxy-nodes"

    def proxy_node_file(self, node: str) -> str:
        """The upstream line of the web node named ``node`` in the inventory."""
        return f"{self.proxy_nodes_dir}/{re.sub(r'[^A-Za-z0-9_.-]+', '_', node).strip('_')}.conf"

    @property
    def proxy_cache_dir(self) -> str:
        """The proxy's caches, one directory per kind (nginx's workers' alone: cached
        thumbnails are users' data, and their keys hold session cookies)."""
        return PROXY_CACHE_DIR

    @property
    def maintenance_dir(self) -> str:
        """The maintenance page the proxy serves while omero_proxy_maintenance is on."""
        return MAINTENANCE_DIR

    # -- the analysis environment ---------------------------------------------------------------
    @property
    def hub_venv(self) -> str:
        return f"{self.analysis_basedir}/hub-venv"

    @property
    def user_venv(self) -> str:
        """The users' kernels and single-user servers."""
        return f"{self.analysis_basedir}/user-venv"

    @property
    def proxy_dir(self) -> str:
        """configurable-http-proxy, installed by npm; one directory per release."""
        return f"{self.analysis_basedir}/proxy-{self.analysis_proxy_version}"

    @property
    def proxy_command(self) -> str:
        return f"{self.proxy_dir}/node_modules/.bin/configurable-http-proxy"

    @property
    def npmrc(self) -> str:
        return f"{self.analysis_basedir}/npmrc"

    @property
    def hub_config(self) -> str:
        return f"{self.analysis_basedir}/jupyterhub_config.py"

    @property
    def hub_state_dir(self) -> str:
        """The hub's database, the proxy's pid file and the hub's secrets (root's, 0700)."""
        return HUB_STATE_DIR

    @property
    def hub_cookie_secret(self) -> str:
        return f"{self.hub_state_dir}/cookie_secret"

    @property
    def proxy_auth_token(self) -> str:
        return f"{self.hub_state_dir}/proxy_auth_token"

    @property
    def hub_site_path(self) -> str:
        """The hub's nginx site, beside OMERO.web's."""
        return f"{posixpath.dirname(self.platform.nginx_site_path)}/omero-jupyterhub.conf"

    @property
    def hub_inaccessible_paths(self) -> tuple[str, ...]:
        """OMERO's trees no user's server needs: hidden from them (systemd InaccessiblePaths;
        '-': a tree this host has not is skipped)."""
        return (self.data_dir, self.server_config_dir, self.server_home, self.web_config_dir,
                f"{self.web_omerodir}/etc", self.web_home, self.backup_config_dir, self.backup_state_dir,
                self.hub_state_dir, self.tls_dir)

    # -- backups --------------------------------------------------------------------------------
    @property
    def backup_config_dir(self) -> str:
        return "/etc/omero-backup"

    @property
    def backup_config_file(self) -> str:
        return f"{self.backup_config_dir}/backup.json"

    @property
    def backup_password_file(self) -> str:
        return f"{self.backup_config_dir}/repository.password"

    @property
    def backup_ssh_key_file(self) -> str:
        return f"{self.backup_config_dir}/id_ed25519"

    @property
    def backup_ssh_config(self) -> str:
        return f"{self.backup_config_dir}/ssh_config"

    @property
    def backup_state_dir(self) -> str:
        """status.json (for monitoring), the backup host's known key, scratch space."""
        return BACKUP_STATE_DIR

    @property
    def backup_dump_dir(self) -> str:
        """Where the database dump is written before it goes into the repositories."""
        return f"{self.backup_state_dir}/dump"

    @property
    def backup_cache_dir(self) -> str:
        return BACKUP_CACHE_DIR

    @property
    def backup_program(self) -> str:
        return "/usr/local/sbin/omero-backup"

    @property
    def restore_program(self) -> str:
        return "/usr/local/sbin/omero-restore"

    @property
    def backup_excludes(self) -> tuple[str, ...]:
        """What OMERO rebuilds by itself: left out of backups."""
        return tuple(f"{self.data_dir}/{cache}" for cache in ("BioFormatsCache", "Thumbnails"))
