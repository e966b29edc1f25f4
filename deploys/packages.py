"""The distribution packages a host's roles need, installed in one run of the package
manager (each run pays for reading the package lists and for the triggers once more). Not
Redis: its filter is in place before its package starts it (redis.py); nor the read-only
servers' NFS and haproxy, which their own steps install."""

from dataclasses import dataclass, field

from .topology import ANALYSIS, DATABASE, PROXY, READONLY, SERVER, STANDBY, WEB


@dataclass
class Needs:
    """What to install, and what dnf needs enabled first (each with the reason it is)."""

    packages: list[str] = field(default_factory=list)
    dnf_modules: list[tuple[str, str, str]] = field(default_factory=list)  # (what, module, stream)
    epel: list[str] = field(default_factory=list)
    crb: list[str] = field(default_factory=list)


def needed(settings, backup_host: bool) -> Needs:
    platform, roles = settings.platform, settings.roles
    needs = Needs(packages=list(platform.base_packages))
    if settings.builds_icepy:
        needs.packages += platform.build_packages
    if settings.service_manager == "supervisord":
        needs.packages.append(platform.supervisor_package)
        needs.epel.append("supervisor")
    if roles & {DATABASE, STANDBY}:
        # Debian's package creates the cluster (UTF8 with a UTF8 locale; C.UTF-8 without one).
        needs.packages += platform.postgres_packages
        needs.dnf_modules.append((f"PostgreSQL {platform.postgres_version}", "postgresql",
                                  str(platform.postgres_version)))
    if roles & {SERVER, READONLY}:
        needs.packages += server_packages(settings)
        needs.crb.append("libdb-cxx for Ice")
    if roles & {WEB, PROXY}:
        needs.packages += ["nginx", *(["openssl"] if settings.tls_mode.made_on_host else [])]
    if WEB in roles and ANALYSIS in roles:
        needs.packages += platform.nodejs_packages
        needs.dnf_modules.append((f"Node.js {platform.nodejs_major}", "nodejs", platform.nodejs_module_stream))
    if settings.backs_up:
        needs.packages += ["restic", "openssh-client" if platform.is_debian else "openssh-clients"]
        needs.epel.append("restic")
    if backup_host:
        needs.packages += platform.sftp_server_packages
    needs.packages = list(dict.fromkeys(needs.packages))
    return needs


def server_packages(settings) -> list[str]:
    """An OMERO.server host's: Java, Ice's runtime libraries, psql, which applies the schema
    (not on a read-only server), and openssl, which makes Glacier2's certificate."""
    platform = settings.platform
    return [platform.java_package(settings.java_version), *platform.ice_runtime_packages,
            *(() if settings.server_readonly else (platform.postgres_client_package,)), "openssl"]
