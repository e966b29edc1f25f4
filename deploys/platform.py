"""What differs between the operating systems we support, decided from facts."""

from dataclasses import dataclass

from .errors import OmeroDeployError

SUPPORTED = "Ubuntu 22.04, Ubuntu 24.04, Debian 12, Debian 13, Rocky Linux / RHEL / AlmaLinux 9"


@dataclass(frozen=True)
class Platform:
    label: str
    family: str  # "debian" or "rhel"
    python: str  # the interpreter OMERO's venvs are made with
    postgres_version: int
    default_java: int
    nginx_user: str
    nginx_version: tuple[int, int]  # what the distribution packages
    # The major version of the Node.js the deploy installs (configurable-http-proxy runs on
    # it): the distribution's own package, or on RHEL the AppStream module stream enabled.
    nodejs_major: int
    # Ubuntu 24.04 and Debian 13 renamed libraries for 64-bit time_t (libssl3t64, ...).
    time64_libraries: bool = False

    @property
    def is_debian(self) -> bool:
        return self.family == "debian"

    # -- packages -------------------------------------------------------------------------
    @property
    def base_packages(self) -> list[str]:
        common = ["ca-certificates", "curl", "unzip", "tar", "bzip2"]
        if self.is_debian:
            return common + ["python3-venv", "procps"]
        return common + [self.python, "procps-ng"]

    @property
    def build_packages(self) -> list[str]:
        """What building the IcePy wheel on the host takes (files/build-icepy-wheel.sh)."""
        if self.is_debian:
            return ["python3-dev", "g++", "make", "libssl-dev", "libbz2-dev"]
        return [f"{self.python}-devel", "gcc-c++", "make", "openssl-devel", "bzip2-devel"]

    def java_package(self, version: int) -> str:
        if self.is_debian:
            return f"openjdk-{version}-jre-headless"
        return f"java-{version}-openjdk-headless"

    @property
    def ice_runtime_packages(self) -> list[str]:
        # Glencoe's Ice 3.6.5 builds link against these.
        if self.time64_libraries and self.label.startswith("Ubuntu"):
            return ["libdb5.3t64++", "libexpat1", "libbz2-1.0", "libssl3t64"]
        if self.time64_libraries:
            return ["libdb5.3++t64", "libexpat1", "libbz2-1.0", "libssl3t64"]
        if self.is_debian:
            return ["libdb5.3++", "libexpat1", "libbz2-1.0", "libssl3"]
        return ["expat", "libdb-cxx", "bzip2-libs", "openssl-libs"]

    @property
    def postgres_packages(self) -> list[str]:
        if self.is_debian:
            return [f"postgresql-{self.postgres_version}", "postgresql-client"]
        return ["postgresql-server", "postgresql"]

    @property
    def postgres_client_package(self) -> str:
        return "postgresql-client" if self.is_debian else "postgresql"

    @property
    def nodejs_packages(self) -> list[str]:
        return ["nodejs", "npm"]

    @property
    def nodejs_module_stream(self) -> str | None:
        """RHEL 9's AppStream: the unversioned nodejs is 16 (retired); newer come as module streams."""
        return None if self.is_debian else str(self.nodejs_major)

    @property
    def supervisor_package(self) -> str:
        return "supervisor"

    @property
    def sftp_server(self) -> str:
        return "/usr/lib/openssh/sftp-server" if self.is_debian else "/usr/libexec/openssh/sftp-server"

    @property
    def sftp_server_packages(self) -> list[str]:
        return ["openssh-server", "openssh-sftp-server"] if self.is_debian else ["openssh-server"]

    # -- PostgreSQL layout ----------------------------------------------------------------
    @property
    def postgres_data_dir(self) -> str:
        if self.is_debian:
            return f"/var/lib/postgresql/{self.postgres_version}/main"
        return "/var/lib/pgsql/data"

    @property
    def postgres_home(self) -> str:
        """The postgres account's home, as the package makes it."""
        return "/var/lib/postgresql" if self.is_debian else "/var/lib/pgsql"

    @property
    def postgres_conf_dir(self) -> str:
        if self.is_debian:
            return f"/etc/postgresql/{self.postgres_version}/main"
        return self.postgres_data_dir

    @property
    def postgres_bin_dir(self) -> str:
        if self.is_debian:
            return f"/usr/lib/postgresql/{self.postgres_version}/bin"
        return "/usr/bin"

    @property
    def postgres_unit(self) -> str:
        """The unit that really runs the cluster (OME's units name RHEL's, which Ubuntu lacks)."""
        if self.is_debian:
            return f"postgresql@{self.postgres_version}-main.service"
        return "postgresql.service"

    # -- Redis (omero_redis): the distribution's own --------------------------------------
    @property
    def redis_package(self) -> str:
        return "redis-server" if self.is_debian else "redis"

    @property
    def redis_service(self) -> str:
        """The distribution's unit (without ``.service``)."""
        return "redis-server" if self.is_debian else "redis"

    @property
    def redis_conf(self) -> str:
        return "/etc/redis/redis.conf"

    @property
    def redis_log(self) -> str:
        return "/var/log/redis/redis-server.log" if self.is_debian else "/var/log/redis/redis.log"

    @property
    def redis_pidfile(self) -> str:
        """Where the distribution's unit expects it (its RuntimeDirectory)."""
        return "/run/redis/redis-server.pid" if self.is_debian else "/run/redis/redis.pid"

    # -- trust store, supervisord, nginx --------------------------------------------------
    @property
    def ca_dir(self) -> str:
        return "/usr/local/share/ca-certificates" if self.is_debian else "/etc/pki/ca-trust/source/anchors"

    @property
    def ca_update_command(self) -> str:
        return "update-ca-certificates" if self.is_debian else "update-ca-trust extract"

    @property
    def ca_bundle(self) -> str:
        return "/etc/ssl/certs/ca-certificates.crt" if self.is_debian else "/etc/pki/tls/certs/ca-bundle.crt"

    @property
    def supervisor_conf(self) -> str:
        return "/etc/supervisor/supervisord.conf" if self.is_debian else "/etc/supervisord.conf"

    def supervisor_program_path(self, program: str) -> str:
        if self.is_debian:
            return f"/etc/supervisor/conf.d/{program}.conf"
        return f"/etc/supervisord.d/{program}.ini"

    @property
    def nginx_site_path(self) -> str:
        # conf.d is read on both families; Debian's default site lives in sites-enabled.
        return "/etc/nginx/conf.d/omero-web.conf"

    @property
    def nginx_rejects_handshakes(self) -> bool:
        """``ssl_reject_handshake`` (nginx 1.19.4): refuse unknown names without a certificate."""
        return self.nginx_version >= (1, 20)

    @property
    def nginx_http2_directive(self) -> bool:
        """``http2 on`` (nginx 1.25.1) rather than the ``listen ... http2`` it deprecates."""
        return self.nginx_version >= (1, 26)

    @property
    def nginx_default_sites(self) -> list[str]:
        if self.is_debian:
            return ["/etc/nginx/sites-enabled/default"]
        return []


def detect(distribution: dict) -> Platform:
    """Map pyinfra's LinuxDistribution fact to a Platform, refusing anything unsupported."""
    meta = distribution.get("release_meta") or {}
    os_id = (meta.get("ID") or "").lower()
    major = distribution.get("major")
    version = meta.get("VERSION_ID", "")
    if os_id == "ubuntu" and version == "22.04":
        return Platform("Ubuntu 22.04", "debian", "python3", 14, 11, "www-data", (1, 18), 12)
    if os_id == "ubuntu" and version == "24.04":
        return Platform("Ubuntu 24.04", "debian", "python3", 16, 11, "www-data", (1, 24), 18,
                        time64_libraries=True)
    if os_id == "debian" and major == 12:
        return Platform("Debian 12", "debian", "python3", 15, 17, "www-data", (1, 22), 18)
    if os_id == "debian" and major == 13:
        # trixie packages Java 21 and 25 only.
        return Platform("Debian 13", "debian", "python3", 17, 21, "www-data", (1, 26), 20,
                        time64_libraries=True)
    if os_id in ("rocky", "rhel", "almalinux") and major == 9:
        return Platform(f"{meta.get('NAME', os_id)} 9", "rhel", "python3.12", 16, 11, "nginx", (1, 20), 22)
    found = f"{distribution.get('name') or 'unknown'} {version or major or ''}".strip()
    raise OmeroDeployError(f"unsupported operating system {found!r}; supported: {SUPPORTED}")
