"""Read a host's options and its place in the inventory; validate all of it up front.

``load()`` runs while pyinfra plans the deploy (before anything executes), so a bad
option stops the run before any host changes, with a message naming the option.
"""

import difflib
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

from . import secrets
from .defaults import DEFAULTS
from .errors import OmeroDeployError, OmeroOptionError
from .platform import Platform

DATABASE, SERVER, WEB = "omero_database", "omero_server", "omero_web"
ROLES = (DATABASE, SERVER, WEB)

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SERVER_ZIP = re.compile(r"^OMERO\.server-(\d+\.\d+\.\d+)-ice36\.zip$")
_ICEPY_WHEEL = re.compile(r"^zeroc_ice-3\.6\.5-.+\.whl$")
_WELL_KNOWN_PASSWORDS = {"omero", "password", "changeme", "secret", "admin", "root", "ome"}


@dataclass(frozen=True)
class Artifact:
    """A file the deploy needs, from a URL or from a path on the machine running pyinfra."""

    source: str
    sha256: str

    @property
    def is_url(self) -> bool:
        return urlparse(self.source).scheme in ("http", "https")

    @property
    def filename(self) -> str:
        return PurePosixPath(urlparse(self.source).path if self.is_url else self.source).name


@dataclass(frozen=True)
class Settings:
    """One host's validated options, roles and peers. ``settings.db_name`` reads ``omero_db_name``."""

    options: dict[str, Any]
    platform: Platform
    roles: frozenset[str]
    service_manager: str
    # Peers, resolved from the inventory's groups.
    database_address: str | None  # where the server reaches PostgreSQL
    db_client_addresses: tuple[str, ...]  # server hosts PostgreSQL must accept
    db_listen_addresses: str
    web_server_addresses: tuple[str, ...]  # OMERO.server hosts the web connects to
    # Present for server hosts only.
    server_artifact: Artifact | None = None
    server_version: str | None = None
    ice_artifact: Artifact | None = None
    icepy_wheel: Artifact | None = None
    db_password: str | None = None
    root_password: str | None = None

    def __getattr__(self, name: str) -> Any:
        try:
            return self.options[f"omero_{name}"]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def java_version(self) -> int:
        return self.options["omero_java_version"] or self.platform.default_java

    @property
    def server_dir(self) -> str:
        return f"{self.server_basedir}/OMERO.server-{self.server_version}-ice36"

    @property
    def server_symlink(self) -> str:
        return f"{self.server_basedir}/OMERO.server"

    @property
    def web_omerodir(self) -> str:
        return f"{self.web_basedir}/OMERO.web"


def address_of(host) -> str:
    """How other hosts reach ``host``: its ``omero_address``, else its name (SSH hosts)."""
    given = host.data.get("omero_address")
    if given:
        return given
    return "localhost" if host.name.startswith("@") else host.name


def load(host, inventory, platform: Platform, pid1: str) -> Settings:
    options = {name: host.data.get(name, default) for name, default in DEFAULTS.items()}
    roles = frozenset(group for group in ROLES if group in host.groups)
    check = _Checker(options, host.name)
    check.known(host.data.dict())
    check.common()

    database_hosts = inventory.get_group(DATABASE, [])
    server_hosts = inventory.get_group(SERVER, [])
    if len(database_hosts) > 1:
        raise OmeroDeployError(
            f"group {DATABASE} has {len(database_hosts)} hosts; OMERO uses exactly one database"
        )

    def peer_address(peer) -> str:
        # By name: deploy.py passes pyinfra's context proxy, never the Host object itself.
        return "localhost" if peer.name == host.name else address_of(peer)

    database_address = peer_address(database_hosts[0]) if database_hosts else None
    client_addresses = tuple(peer_address(peer) for peer in server_hosts)
    remote_clients = [a for a in client_addresses if a != "localhost"]
    listen = ",".join(["localhost"] + ([address_of(host)] if remote_clients else []))
    web_servers = tuple(peer_address(peer) for peer in server_hosts) or (
        options["omero_web_server_host"],
    )

    extra: dict[str, Any] = {}
    if roles & {SERVER, WEB}:
        extra["icepy_wheel"] = check.optional_artifact("omero_icepy_wheel", "omero_icepy_wheel_sha256",
                                                       _ICEPY_WHEEL, "zeroc_ice-3.6.5-<tags>.whl")
    if SERVER in roles:
        if database_address is None:
            raise OmeroDeployError(
                f"host {host.name} is in {SERVER} but the inventory has no {DATABASE} host"
            )
        server_artifact = check.required_artifact(
            "omero_server_artifact", "omero_server_sha256", _SERVER_ZIP,
            "OMERO.server-<version>-ice36.zip")
        extra["server_artifact"] = server_artifact
        extra["server_version"] = _SERVER_ZIP.match(server_artifact.filename).group(1)
        extra["ice_artifact"] = check.required_artifact(
            "omero_ice_artifact", "omero_ice_sha256", None, None)
        extra["root_password"] = check.password("omero_root_password", secrets.resolve(
            options["omero_root_password"], "OMERO_ROOT_PASSWORD", options["omero_secrets_dir"],
            f"{host.name}-omero-root"))
    if roles & {SERVER, DATABASE}:
        extra["db_password"] = check.password("omero_db_password", secrets.resolve(
            options["omero_db_password"], "OMERO_DB_PASSWORD", options["omero_secrets_dir"],
            f"{database_hosts[0].name}-db-{options['omero_db_user']}"))

    manager = options["omero_service_manager"]
    if manager == "auto":
        manager = "systemd" if pid1 == "systemd" else "supervisord"
    elif manager == "systemd" and pid1 != "systemd":
        raise OmeroOptionError("omero_service_manager", f"systemd is not PID 1 here (PID 1 is {pid1!r})",
                               host.name)

    return Settings(
        options=options,
        platform=platform,
        roles=roles,
        service_manager=manager,
        database_address=database_address,
        db_client_addresses=client_addresses,
        db_listen_addresses=listen,
        web_server_addresses=web_servers,
        **extra,
    )


class _Checker:
    """Validation of option values; each failure raises OmeroOptionError."""

    def __init__(self, options: dict[str, Any], host_name: str):
        self.options = options
        self.host_name = host_name

    def fail(self, option: str, problem: str):
        raise OmeroOptionError(option, problem, self.host_name)

    def known(self, data: dict) -> None:
        """A misspelt option would silently fall back to its default: refuse it instead."""
        for key in data:
            if key.startswith("omero_") and key not in DEFAULTS:
                close = difflib.get_close_matches(key, DEFAULTS, n=1)
                self.fail(key, "is not an option of this deploy"
                               + (f"; did you mean {close[0]}?" if close else ""))

    def common(self) -> None:
        o = self.options
        if o["omero_service_manager"] not in ("auto", "systemd", "supervisord"):
            self.fail("omero_service_manager",
                      f"must be auto, systemd or supervisord, not {o['omero_service_manager']!r}")
        certificates = o["omero_extra_ca_certificates"]
        if not isinstance(certificates, (list, tuple)):
            self.fail("omero_extra_ca_certificates", "must be a list of file paths")
        for path in certificates:
            if not os.path.isfile(path):
                self.fail("omero_extra_ca_certificates", f"{path} is not a file")
            with open(path, encoding="ascii", errors="replace") as handle:
                if "-----BEGIN CERTIFICATE-----" not in handle.read():
                    self.fail("omero_extra_ca_certificates", f"{path} holds no PEM certificate")
        for option in ("omero_http_proxy", "omero_pip_index_url"):
            if o[option] is not None and urlparse(str(o[option])).scheme not in ("http", "https"):
                self.fail(option, f"must be an http(s) URL, not {o[option]!r}")
        for option in ("omero_db_name", "omero_db_user"):
            if not _IDENTIFIER.match(str(o[option])):
                self.fail(option, f"{o[option]!r} is not a plain lower-case PostgreSQL name")
        self.port("omero_db_port", o["omero_db_port"])
        for option in ("omero_wheel_dir", "omero_ice_home", "omero_server_basedir", "omero_data_dir",
                       "omero_server_db_dump_dir", "omero_web_basedir"):
            if not str(o[option]).startswith("/"):
                self.fail(option, f"must be an absolute path, not {o[option]!r}")
        for option in ("omero_server_user", "omero_web_user", "omero_group"):
            if not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", str(o[option])):
                self.fail(option, f"{o[option]!r} is not a valid user or group name")
        if o["omero_java_version"] not in (None, 11, 17, 21):
            self.fail("omero_java_version", f"must be 11, 17 or 21, not {o['omero_java_version']!r}")
        workers = o["omero_web_workers"]
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            self.fail("omero_web_workers", f"must be a positive whole number, not {workers!r}")
        self.endpoint("omero_web_bind", o["omero_web_bind"], need_address=True)
        self.endpoint("omero_nginx_listen", o["omero_nginx_listen"], need_address=False)
        for option in ("omero_server_config", "omero_web_config"):
            config = o[option]
            if not isinstance(config, dict) or not all(
                isinstance(key, str) and key.startswith("omero.") for key in config
            ):
                self.fail(option, "must be a mapping of OMERO setting names (omero.*) to values")
            # Values are written single-quoted, one per line, into the config files.
            for key, value in config.items():
                if "'" in str(value) or "\n" in str(value):
                    self.fail(option, f"the value of {key} holds a single quote or a line break")
        for version_option in ("omero_py_version", "omero_web_version"):
            if not re.match(r"^\d+\.\d+\.\d+$", str(o[version_option])):
                self.fail(version_option, f"must be a release like 5.23.0, not {o[version_option]!r}")

    def port(self, option: str, value) -> int:
        if not isinstance(value, int) or not 0 < value < 65536:
            self.fail(option, f"must be a TCP port number, not {value!r}")
        return value

    def endpoint(self, option: str, value, need_address: bool) -> None:
        address, _, port = str(value).rpartition(":")
        if need_address and not address:
            self.fail(option, f"must be address:port, not {value!r}")
        if not port.isdigit() or not 0 < int(port) < 65536:
            self.fail(option, f"{value!r} does not end in a TCP port number")

    def password(self, option: str, value) -> str:
        if not isinstance(value, str):
            self.fail(option, "must be a string")
        if value.lower() in _WELL_KNOWN_PASSWORDS or len(value) < 12:
            self.fail(option, "is a well-known or short password (use 12 characters or more)")
        if not value.isascii() or not value.isprintable() or "'" in value:
            self.fail(option, "must be printable ASCII, without a single quote")
        return value

    def optional_artifact(self, option, sha_option, name_pattern, name_hint) -> Artifact | None:
        if not self.options[option]:
            if self.options[sha_option]:
                self.fail(sha_option, f"is set but {option} is not")
            return None
        return self.required_artifact(option, sha_option, name_pattern, name_hint)

    def required_artifact(self, option, sha_option, name_pattern, name_hint) -> Artifact:
        source, sha256 = self.options[option], self.options[sha_option]
        if not source:
            self.fail(option, "is required on this host: give the URL or local path of the file "
                              "(it cannot be downloaded for you: no vendor URL is built in)")
        artifact = Artifact(str(source), str(sha256 or "").lower())
        if not artifact.is_url and not os.path.isfile(artifact.source):
            self.fail(option, f"{artifact.source} is neither an http(s) URL nor an existing file")
        if name_pattern is not None and not name_pattern.match(artifact.filename):
            self.fail(option, f"file name {artifact.filename!r} is not like {name_hint}")
        if not _SHA256.match(artifact.sha256):
            self.fail(sha_option, f"must be the 64 hex digit sha256 of {artifact.filename}")
        if not artifact.is_url:
            actual = _sha256_of(artifact.source)
            if actual != artifact.sha256:
                self.fail(sha_option, f"does not match {artifact.source} (its sha256 is {actual})")
        return artifact


def _sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
