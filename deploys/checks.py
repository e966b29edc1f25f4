"""Checks of what one value's grammar cannot see: options against each other (ports, accounts,
directories), passwords, the site's certificate and key, the artifacts, and the host's own
accounts and directories before anything changes."""

import difflib
import hashlib
import ipaddress
import os
import posixpath
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import passwords
from .errors import OmeroOptionError
from .grammar import ARTIFACT_URL_CHARS, SHA256, Bad, ip_literal, parse_url
from .layout import DEPLOY_DIRS, SERVER_BASE_ENTRIES, SERVER_VERSIONS
from .names import inside, overlap, system_tree_check
from .options import DEFAULTS, EXAMPLES, OPTIONS, REMOVED, Options
from .platform import Platform
from .topology import ANALYSIS, READONLY, SERVER, WEB
from .values import Artifact, TlsMode

if TYPE_CHECKING:
    from .settings import Settings

# Directories of the options: root's (code and configuration), and those a service account
# writes. The second may not overlap the first, nor each other.
ROOT_TREE_OPTIONS = ("omero_server_basedir", "omero_web_basedir", "omero_ice_home", "omero_wheel_dir",
                     "omero_analysis_basedir")
SERVICE_DIR_OPTIONS = ("omero_data_dir", "omero_server_db_dump_dir", "omero_backup_local_dir")
# Accounts people log in with: uid 1000 and up on Debian, Ubuntu and RHEL, but nobody's.
_FIRST_LOGIN_UID, _NOBODY_UID = 1000, 65534


def parse_options(values: dict[str, Any], platform: Platform, host_name: str) -> Options:
    """Every option (``values`` has them all, by name) parsed by its grammar, then checked
    against the others; OmeroOptionError for the first bad one."""
    parsed = {}
    for row in OPTIONS:
        try:
            parsed[row.name] = row.grammar(values[row.name])
        except Bad as bad:
            raise OmeroOptionError(row.name, str(bad), host_name, row.good_value) from None

    def fail(option: str, problem: str):
        raise OmeroOptionError(option, problem, host_name, EXAMPLES[option])

    for user in ("omero_server_user", "omero_web_user"):
        if parsed[user] == platform.nginx_user:
            fail(user, f"{parsed[user]!r} is nginx's user on {platform.label}")
        if parsed[user] == parsed["omero_group"]:
            fail(user, f"{parsed[user]!r} is also omero_group; each service user has a group "
                       "of its own besides the shared one")
    proxy = parsed["omero_http_proxy"]
    if proxy and not platform.is_debian and urlsplit(proxy).password is not None:
        # dnf keeps its proxy in dnf.conf, readable by every user, and has no drop-in directory.
        fail("omero_http_proxy", f"carries a password, which dnf on {platform.label} would keep in "
                                 "the world-readable /etc/dnf/dnf.conf; use a proxy that admits "
                                 "the hosts without one")
    if parsed["omero_web_user"] == parsed["omero_server_user"]:
        fail("omero_web_user", f"{parsed['omero_web_user']!r} is also omero_server_user; the "
                               "web (facing the network) must not run as the server")
    if parsed["omero_db_replication_user"] == parsed["omero_db_user"]:
        fail("omero_db_replication_user", f"{parsed['omero_db_user']!r} is also omero_db_user; the standby "
                                          "streams with a role of its own, which reaches no database")
    _check_accounts(parsed, fail)
    _check_directories(parsed, fail)
    bind, listen, https_listen = (parsed["omero_web_bind"], parsed["omero_nginx_listen"],
                                  parsed["omero_nginx_https_listen"])
    bind_address = bind.address
    if not is_loopback(bind_address):
        # gunicorn trusts the X-Forwarded-Proto nginx sets: nothing but nginx may reach it.
        fail("omero_web_bind", f"{bind_address!r} is not a loopback address; gunicorn trusts the "
                               "headers nginx sets, so it listens on 127.0.0.1, ::1 or localhost only")
    if bind.clashes(listen):
        fail("omero_nginx_listen", f"port {listen.port} is omero_web_bind's too; nginx and "
                                   "gunicorn need different ports")
    https = TlsMode.chosen(parsed["omero_nginx_tls"], parsed["omero_nginx_tls_certificate"]).https
    if https and bind.clashes(https_listen):
        fail("omero_nginx_https_listen", f"port {https_listen.port} is omero_web_bind's too")
    if https and listen.clashes(https_listen):
        fail("omero_nginx_https_listen", f"port {https_listen.port} is omero_nginx_listen's too; HTTP "
                                         "and HTTPS need different ports")
    analysis_port = parsed["omero_analysis_port"]
    taken = {bind.port: "omero_web_bind", listen.port: "omero_nginx_listen",
             **({https_listen.port: "omero_nginx_https_listen"} if https else {})}
    for port in range(analysis_port, analysis_port + 3):
        if port in taken:
            fail("omero_analysis_port", f"the analysis environment uses ports {analysis_port}-"
                                        f"{analysis_port + 2}, and {port} is {taken[port]}'s")
    return Options(**{row.field: parsed[row.name] for row in OPTIONS})


def is_loopback(address: str) -> bool:
    return address == "localhost" or (ip_literal(address) is not None and ipaddress.ip_address(address).is_loopback)


def _check_accounts(parsed: dict[str, Any], fail: Callable[[str, str], None]) -> None:
    """One account or group per role: sharing one would hand a role's files to another."""
    roles = {"omero_server_user": "OMERO.server's user", "omero_web_user": "OMERO.web's user",
             "omero_group": "the group sharing the repository", "omero_backup_user": "the backup account",
             "omero_analysis_users_group": "the JupyterHub users' group"}
    seen: dict[str, str] = {}
    for option in roles:
        name = parsed[option]
        if name in seen:
            fail(option, f"{name!r} is also {seen[name]} ({roles[seen[name]]}); each role needs an "
                         "account or group of its own")
        seen[name] = option


def _check_directories(parsed: dict[str, Any], fail: Callable[[str, str], None]) -> None:
    """Root's trees apart from each other; what a service account writes apart from root's trees
    (it could change what root runs) and from the other service directories."""
    roots = [(option, parsed[option]) for option in ROOT_TREE_OPTIONS]
    for index, (option, path) in enumerate(roots):
        for other, other_path in roots[:index]:
            if overlap(path, other_path):
                fail(option, f"{path} overlaps {other} ({other_path}); give each its own directory")
    base = parsed["omero_server_basedir"]
    kept = [(f"omero_server_basedir's {entry}", f"{base}/{entry}") for entry in SERVER_BASE_ENTRIES]
    kept += [(option, path) for option, path in roots if option != "omero_server_basedir"]
    kept += [("the deploy's own directory", path) for path in DEPLOY_DIRS]
    services = [(option, parsed[option]) for option in SERVICE_DIR_OPTIONS if parsed[option]]
    for index, (option, path) in enumerate(services):
        if inside(base, path):
            fail(option, f"{path} holds omero_server_basedir ({base}), root's; a service account "
                         "writes here, so give it a directory of its own")
        if path.startswith(f"{base}/{SERVER_VERSIONS}"):
            fail(option, f"{path} is inside an unpacked OMERO.server ({base}/{SERVER_VERSIONS}*), root's; "
                         "a service account writes here, so give it a directory of its own")
        for what, tree in kept:
            if overlap(path, tree):
                fail(option, f"{path} overlaps {what} ({tree}), root's; a service account writes "
                             "here, so give it a directory of its own")
        for other, other_path in services[:index]:
            if overlap(path, other_path):
                fail(option, f"{path} overlaps {other} ({other_path}); each is written by another "
                             "account, so give each its own directory")


class Checker:
    """The checks that need more than a value: option names, passwords, artifacts."""

    def __init__(self, host_name: str):
        self.host_name = host_name

    def fail(self, option: str, problem: str, example: Any = None):
        raise OmeroOptionError(option, problem, self.host_name,
                               EXAMPLES.get(option) if example is None else example)

    def known(self, keys: Iterable[str]) -> None:
        """A misspelt option would silently fall back to its default: refuse it instead."""
        for key in keys:
            if key in REMOVED:
                raise OmeroOptionError(key, REMOVED[key], self.host_name)
            if key.startswith("omero_") and key not in DEFAULTS:
                close = difflib.get_close_matches(key, DEFAULTS, n=1)
                raise OmeroOptionError(key, "is not an option of this deploy"
                                       + (f"; did you mean {close[0]}?" if close else ""),
                                       self.host_name)

    def password(self, option: str, value: str) -> str:
        # Never the value in a message: it is a secret.
        refused = passwords.refusal(value, single_quote=False)
        if refused:
            self.fail(option, refused)
        return value

    def tls_mode(self, options: Options, names: tuple[str, ...]) -> TlsMode:
        mode, certificate, key = options.nginx_tls, options.nginx_tls_certificate, options.nginx_tls_key
        if certificate is None:
            if key is not None:
                self.fail("omero_nginx_tls_key", "is set but omero_nginx_tls_certificate is not")
            return TlsMode.chosen(mode, certificate)
        if mode != "auto":
            self.fail("omero_nginx_tls", f"is {mode!r} but omero_nginx_tls_certificate is given; "
                                         "leave it 'auto' to serve that certificate", example="auto")
        if key is None:
            self.fail("omero_nginx_tls_key", "is required with omero_nginx_tls_certificate")
        self.certificate_pair(certificate, key, names)
        return TlsMode.chosen(mode, certificate)

    def certificate_pair(self, certificate: str, key: str, names: tuple[str, ...]) -> None:
        """The given chain and key work together for ``names`` (nginx would only find out on
        the host, after the deploy has changed it)."""
        for option, path in (("omero_nginx_tls_certificate", certificate), ("omero_nginx_tls_key", key)):
            if not os.path.isfile(path):
                self.fail(option, f"{path} is not a file")
        with open(certificate, "rb") as handle:
            chain_pem = handle.read()
        if b"PRIVATE KEY-----" in chain_pem:
            self.fail("omero_nginx_tls_certificate", f"{certificate} holds a private key; give the "
                                                     "key in omero_nginx_tls_key (it is copied 0600)")
        try:
            leaf = x509.load_pem_x509_certificates(chain_pem)[0]
        except ValueError:
            self.fail("omero_nginx_tls_certificate", f"{certificate} holds no PEM certificate")
        with open(key, "rb") as handle:
            key_pem = handle.read()
        try:
            private_key = serialization.load_pem_private_key(key_pem, password=None)
        except TypeError:
            self.fail("omero_nginx_tls_key", f"{key} is encrypted; nginx needs the key unencrypted "
                                             "(openssl pkey -in KEY -out PLAIN)")
        except ValueError:
            self.fail("omero_nginx_tls_key", f"{key} holds no PEM private key")

        def spki(public_key) -> bytes:
            return public_key.public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)

        if spki(private_key.public_key()) != spki(leaf.public_key()):
            self.fail("omero_nginx_tls_key", f"{key} is not the key of the first certificate in "
                                             f"{certificate}")
        if leaf.not_valid_after_utc <= datetime.now(timezone.utc):
            self.fail("omero_nginx_tls_certificate", f"{certificate} expired on "
                                                     f"{leaf.not_valid_after_utc:%Y-%m-%d}")
        try:
            sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            sans = x509.SubjectAlternativeName([])
        covered = [name.lower() for name in sans.get_values_for_type(x509.DNSName)]
        covered += [str(address) for address in sans.get_values_for_type(x509.IPAddress)]
        for name in names:
            if not covers(covered, name.lower()):
                self.fail("omero_nginx_tls_certificate",
                          f"{certificate} is not for {name} (it names {', '.join(covered) or 'nothing'}); "
                          "browsers would refuse it. Give a certificate for every server name "
                          "(omero_nginx_server_name's, and omero_analysis_server_name on its hosts)",
                          example=EXAMPLES["omero_nginx_tls_certificate"])

    def optional_artifact(self, options: Options, option, sha_option, name_pattern, name_hint) -> Artifact | None:
        if not options.value(option):
            if options.value(sha_option):
                self.fail(sha_option, f"is set but {option} is not")
            return None
        return self.required_artifact(options, option, sha_option, name_pattern, name_hint)

    def required_artifact(self, options: Options, option, sha_option, name_pattern, name_hint) -> Artifact:
        source, sha256 = options.value(option), options.value(sha_option)
        if not source:
            self.fail(option, "is required on this host: give the URL or local path of the file "
                              "(it cannot be downloaded for you: no vendor URL is built in)")
        artifact = Artifact(source, (sha256 or "").lower())
        if artifact.is_url:
            try:
                parse_url(source, ARTIFACT_URL_CHARS)
            except Bad as bad:
                self.fail(option, str(bad))
            if urlsplit(source).username is not None:
                # curl would carry them on its command line, which every account on the host sees.
                self.fail(option, "carries credentials (user:password@); give a URL the host can fetch "
                                  "without them, or a local path (the file is then uploaded)")
        elif not os.path.isfile(artifact.source):
            self.fail(option, f"{artifact.source} is neither an http(s) URL nor an existing file")
        # The file keeps its name on the host, where commands use it.
        if not name_pattern.fullmatch(artifact.filename):
            self.fail(option, f"file name {artifact.filename!r} is not like {name_hint}")
        if not SHA256.fullmatch(artifact.sha256):
            self.fail(sha_option, f"must be the 64 hex digit sha256 of {artifact.filename}")
        if not artifact.is_url:
            actual = sha256_of(artifact.source)
            if actual != artifact.sha256:
                self.fail(sha_option, f"does not match {artifact.source} (its sha256 is {actual})")
        return artifact


def covers(certificate_names: list[str], name: str) -> bool:
    """Whether a certificate for ``certificate_names`` is valid for the server name ``name``
    (RFC 6125: a wildcard stands for exactly one left-most label)."""
    if name in certificate_names:
        return True
    first, dot, rest = name.partition(".")
    return bool(dot) and first != "*" and f"*.{rest}" in certificate_names


_checksums: dict[tuple, str] = {}


def sha256_of(path: str) -> str:
    """The sha256 of the local file ``path``, read once per run while it is unchanged (every
    host of a site is planned with the same artifacts)."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _checksums:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _checksums[key] = digest.hexdigest()
    return _checksums[key]


def _is_login_account(account: dict) -> bool:
    return _FIRST_LOGIN_UID <= account["uid"] != _NOBODY_UID


def host_directories(config: "Settings", backup_host: bool) -> dict[str, str]:
    """The directories this host's roles give the deploy (option: path)."""
    options = [*(("omero_server_basedir", "omero_ice_home", "omero_data_dir", "omero_server_db_dump_dir")
                 if SERVER in config.roles else ()),
               # A read-only server: its data directory is the read-write server's, mounted.
               *(("omero_server_basedir", "omero_ice_home", "omero_data_dir") if READONLY in config.roles else ()),
               *(("omero_web_basedir",) if WEB in config.roles else ()),
               *(("omero_wheel_dir",) if config.roles & {SERVER, WEB, READONLY} else ()),
               *(("omero_analysis_basedir",) if ANALYSIS in config.roles else ()),
               *(("omero_backup_local_dir",) if config.backs_up and config.backup_local_dir else ()),
               *(("omero_backup_remote_dir",) if backup_host else ())]
    return {option: config.value(option) for option in options}


def host_accounts(config: "Settings", backup_host: bool) -> dict[str, str]:
    """The accounts and groups this host's roles make (option: name)."""
    options = [*(("omero_server_user", "omero_group") if config.roles & {SERVER, READONLY} else ()),
               *(("omero_web_user",) if WEB in config.roles else ()),
               *(("omero_backup_user",) if backup_host else ())]
    return {option: config.value(option) for option in options}


def check_host(config: "Settings", host_name: str, backup_host: bool, accounts: dict, directories: dict) -> None:
    """What the options name, as the host has it (the facts ``Accounts`` and ``DirectoryOwners``
    of ``host_accounts`` and ``host_directories``), before anything changes: no account of
    someone else's taken over, no directory handed out where others could swap it."""
    def fail(option: str, problem: str):
        raise OmeroOptionError(option, problem, host_name, EXAMPLES[option])

    for option, name in host_accounts(config, backup_host).items():
        account = accounts.get(name)
        if account is None:
            continue
        if _is_login_account(account):
            what = (f"the private group of the login account {name!r}" if option == "omero_group"
                    else f"a login account (uid {account['uid']})")
            fail(option, f"{name!r} is {what} on this host; the deploy would rewrite its "
                         "groups, home or files. Name an account of its own; the deploy makes it")
        home = config.home_of(name) if option in ("omero_server_user", "omero_web_user") else None
        if home and account["home"] != home:
            fail(option, f"{name!r} is an existing account with the home {account['home']}, not one "
                         f"this deploy made (whose home is {home}); name an account of its own")
    for option, path in host_directories(config, backup_host).items():
        resolved = directories["resolved"].get(path, path)
        try:
            system_tree_check(resolved)
        except Bad as bad:
            fail(option, f"{path} leads to {resolved}: {bad}")
        parent = posixpath.dirname(resolved)
        for above, (uid, mode) in directories["above"].items():
            if not inside(parent, above):
                continue
            if uid != 0:
                fail(option, f"{above}, above {path}, belongs to uid {uid}, who could swap {path} for "
                             "a link to a system file before the deploy hands it to a service account; "
                             "use a directory whose parents are all root's")
            if mode & 0o022:
                fail(option, f"{above}, above {path}, is writable by others (mode {mode:o}), who could "
                             "swap it for a link to a system file; use a directory whose parents only "
                             "root may write")
