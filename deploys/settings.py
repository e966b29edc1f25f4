"""Read a host's options and its place in the inventory; parse and check all of it up front.

``load()`` runs while pyinfra plans the deploy (before anything executes), so a bad
option stops the run before any host changes. Every option has a grammar here: a
function that returns the value parsed (paths normalised, endpoints split into address
and port, OMERO settings as the text written) or raises ``_Bad`` with the value's
problem; the error names the option, the problem and a good value (``defaults``).
"""

import difflib
import hashlib
import ipaddress
import json
import math
import os
import posixpath
import re
import shlex
import string
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import passwords, secrets
from .defaults import DEFAULTS, OPTIONS
from .errors import OmeroDeployError, OmeroOptionError
from .platform import Platform
from .webapps import APPS, WebApp

DATABASE, SERVER, WEB = "omero_database", "omero_server", "omero_web"
ANALYSIS = "omero_analysis"  # JupyterHub, served by an omero_web host's nginx
ROLES = (DATABASE, SERVER, WEB, ANALYSIS)
BACKUP = "omero_backup"  # the host keeping the other hosts' backup repositories
EXAMPLES: dict[str, Any] = {option.name: option.good_value for option in OPTIONS}

_SHA256 = re.compile(r"[0-9a-f]{64}")
_RELEASE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
_SERVER_ZIP = re.compile(r"OMERO\.server-([0-9]+\.[0-9]+\.[0-9]+)-ice36\.zip")
_ICEPY_WHEEL = re.compile(r"zeroc_ice-3\.6\.5-[A-Za-z0-9._+-]+\.whl")
_ICE_TARBALL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\.(tar\.gz|tgz)")

_ALNUM = string.ascii_letters + string.digits
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_PATH_CHARS = _ALNUM + "._/+@-"
# Directories the system or other software own: OMERO gets a directory of its own below.
_SYSTEM_DIRS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media", "/mnt",
    "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
    "/usr/bin", "/usr/lib", "/usr/lib64", "/usr/libexec", "/usr/local", "/usr/local/bin",
    "/usr/sbin", "/usr/share", "/var/cache", "/var/lib", "/var/log", "/var/opt", "/var/run",
    "/var/spool", "/var/tmp", "/var/www",
})
# Trees the system, its package managers and other services keep, and what is wiped at boot:
# nothing of OMERO's goes inside them, since the deploy hands its directories to service
# accounts, which could then plant what root runs or reads there.
_SYSTEM_TREES = (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root", "/run",
    "/sbin", "/snap", "/sys", "/tmp", "/usr", "/var/tmp", "/var/run", "/var/lock", "/var/spool", "/var/mail",
    "/var/backups", "/var/cache/apt", "/var/cache/dnf", "/var/lib/apt", "/var/lib/dpkg", "/var/lib/dnf",
    "/var/lib/rpm", "/var/lib/systemd", "/var/lib/sudo", "/var/lib/polkit-1", "/var/lib/postgresql",
    "/var/lib/pgsql", "/var/lib/nginx", "/var/log/journal", "/lost+found",
)
# The deploy's own fixed directories (root's; Settings names each).
STATE_DIR = "/var/lib/omero-pyinfra"
DOWNLOAD_DIR = "/opt/omero/downloads"
HUB_STATE_DIR = "/var/lib/omero-jupyterhub"
BACKUP_STATE_DIR = "/var/lib/omero-backup"
BACKUP_CACHE_DIR = "/var/cache/omero-backup"
ACME_WEBROOT = "/var/www/omero-acme"
_DEPLOY_DIRS = (STATE_DIR, DOWNLOAD_DIR, HUB_STATE_DIR, BACKUP_STATE_DIR, BACKUP_CACHE_DIR, ACME_WEBROOT)
# Directories of the options: root's (code and configuration), and those a service account
# writes. The second may not overlap the first, nor each other.
ROOT_TREE_OPTIONS = ("omero_server_basedir", "omero_web_basedir", "omero_ice_home", "omero_wheel_dir",
                     "omero_analysis_basedir")
SERVICE_DIR_OPTIONS = ("omero_data_dir", "omero_server_db_dump_dir", "omero_backup_local_dir")
# What the deploy keeps in the server base: a service directory may go beside these, not in them.
SERVER_BASE_ENTRIES = ("OMERO.server", "venv3", "config", "downloads")
SERVER_VERSIONS = "OMERO.server-"  # each version unpacked beside the symlink
_ACCOUNT = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
# Accounts and groups of the OS and of the services next to OMERO: sharing one would hand
# OMERO's files to them (or theirs to OMERO). The platform's nginx user is added in load().
_SYSTEM_ACCOUNTS = frozenset({
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
    "proxy", "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup", "_apt",
    "messagebus", "syslog", "sshd", "postgres", "nginx", "apache", "adm", "wheel", "sudo",
    "staff", "users", "shadow", "disk", "tty", "kmem", "utmp", "dialout", "cdrom", "floppy",
    "audio", "video", "plugdev", "netdev", "input", "render", "kvm", "operator", "halt",
    "shutdown", "ftp", "dbus", "polkitd", "chrony", "tss", "docker", "lxd", "supervisor",
})
_PG_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# pg_hba.conf's words for sets of addresses: never an address of ours.
_PG_HBA_ADDRESS_KEYWORDS = frozenset({"all", "samehost", "samenet"})
# PostgreSQL's own roles and databases, pg_hba.conf's keywords and SQL's reserved words.
_PG_RESERVED = frozenset({
    "postgres", "template0", "template1", "public", "none", "all", "sameuser", "samerole",
    "samegroup", "replication", "analyse", "analyze", "and", "any", "array", "as", "asc",
    "asymmetric", "authorization", "binary", "both", "case", "cast", "check", "collate",
    "collation", "column", "concurrently", "constraint", "create", "cross", "current_catalog",
    "current_date", "current_role", "current_schema", "current_time", "current_timestamp",
    "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end", "except",
    "false", "fetch", "for", "foreign", "freeze", "from", "full", "grant", "group", "having",
    "ilike", "in", "initially", "inner", "intersect", "into", "is", "isnull", "join",
    "lateral", "leading", "left", "like", "limit", "localtime", "localtimestamp", "natural",
    "not", "notnull", "null", "offset", "on", "only", "or", "order", "outer", "overlaps",
    "placing", "primary", "references", "returning", "right", "select", "session_user",
    "similar", "some", "symmetric", "system_user", "table", "tablesample", "then", "to",
    "trailing", "true", "union", "unique", "user", "using", "variadic", "verbose", "when",
    "where", "window", "with",
})
# Proxy and index URLs reach apt.conf, dnf.conf, pip.conf and (the proxy) a curl command
# line as they are: no character any of those would read.
_URL_CHARS = _ALNUM + "._~:/@%+-[]"
# Artifact URLs are only ever quoted: RFC 3986's characters but quotes.
_ARTIFACT_URL_CHARS = _ALNUM + "-._~:/?#[]@!$&()*+,;=%"
_CONFIG_KEY = re.compile(r"omero\.[A-Za-z0-9_.]+")
# Backup schedules: daily `HH:MM`, weekly `Mon HH:MM`, or an interval `every 30m` / `every 6h`.
_SCHEDULE = re.compile(r"(?:(Mon|Tue|Wed|Thu|Fri|Sat|Sun) )?([01][0-9]|2[0-3]):([0-5][0-9])"
                       r"|every ([1-9][0-9]{0,3})([mh])")
_KEEP = ("daily", "weekly", "monthly")
# Options this deploy had and no longer has: what to do instead.
_REMOVED = {
    "omero_analysis_path": "was removed: JupyterHub is served at / of a name of its own now (its "
                           "own origin, apart from OMERO.web's); remove it and set "
                           "omero_analysis_server_name (docs/analysis.md)",
}
# A systemd size for a user's memory: mebibytes or gibibytes.
_MEMORY = re.compile(r"([1-9][0-9]{0,6})([MmGg])")
_MEMORY_MIB = (256, 1024 * 1024)  # JupyterLab needs about 200M to start; 1024G at most
# configurable-http-proxy's Node.js requirement (its package.json `engines`), from the
# release on: 4.x declares Node.js 10, 5.0 and 5.1 need 18, 5.2 and later 20.
_PROXY_NODE = (((5, 2, 0), 20), ((5, 0, 0), 18), ((0, 0, 0), 10))


class _Bad(ValueError):
    """A value's problem; the caller names the option and host and adds a good value."""


# -- grammars: a value in, the value parsed out, or _Bad ---------------------------------

def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad(f"must be a string, not {type(value).__name__}")  # no value: it may be a secret
    return value


def _optional(grammar: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else grammar(value)


def _allowed(text: str, chars: str, what: str) -> None:
    bad = next((char for char in text if char not in chars), None)
    if bad is not None:
        raise _Bad(f"holds {bad!r}; {what}")


def _one_of(*choices: Any) -> Callable[[Any], Any]:
    def grammar(value: Any) -> Any:
        # By type too: True == 1 and 17.0 == 17 in Python.
        if not any(type(value) is type(choice) and value == choice for choice in choices):
            names = ", ".join(str(choice) for choice in choices[:-1])
            raise _Bad(f"must be {names} or {choices[-1]}, not {value!r}")
        return value
    return grammar


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise _Bad(f"must be a TCP port number (a whole number 1-65535), not {value!r}")
    return value


def _release(value: Any) -> str:
    if not isinstance(value, str) or not _RELEASE.fullmatch(value):
        raise _Bad(f"must be a release like 5.23.0, not {value!r}")
    return value


def _ip(text: str, version: int | None = None) -> str | None:
    """``text`` as an IP address literal in its normal form, or None."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return str(address) if version in (None, address.version) else None


def _is_host_name(text: str) -> bool:
    """RFC 1123: dot-separated labels of letters, digits and inner '-'; a last label of
    digits only would read as an IPv4 address."""
    labels = text.split(".")
    return (len(text) <= 253 and all(_LABEL.fullmatch(label) for label in labels)
            and not labels[-1].isdigit())


def _address(value: Any) -> str:
    """A host name or an IP address (IPv6 without brackets)."""
    text = _text(value)
    if text.startswith("["):
        raise _Bad(f"{text!r}: write an IPv6 address without brackets here, like ::1")
    _allowed(text, _ALNUM + ".-:", "an address holds only letters, digits, '.', '-' "
                                   "(and ':' in an IPv6 address)")
    address = _ip(text)
    if address is not None:
        return address
    if text.lower() in _PG_HBA_ADDRESS_KEYWORDS:
        raise _Bad(f"{text!r} is a pg_hba.conf keyword (it would admit more than one host to "
                   "PostgreSQL); give the host's name or address")
    if not _is_host_name(text):
        raise _Bad(f"{text!r} is neither an IP address nor a host name (RFC 1123: labels of "
                   "letters, digits and inner '-', separated by dots)")
    return text


def _endpoint(value: Any, need_address: bool) -> tuple[str | None, int]:
    """``address:port`` (``[address:]port`` unless ``need_address``) as (address, port);
    the address None for nginx's port-only form (every address)."""
    form = "address:port" if need_address else "[address:]port"
    if not need_address and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # nginx's port-only form, given as a number
    text = _text(value)
    _allowed(text, _ALNUM + ".-:[]", f"an endpoint ({form}) holds only letters, digits, '.', "
                                     "'-', ':' and brackets around an IPv6 address")
    address: str | None
    if text.startswith("["):
        inside, bracketed, port = text[1:].partition("]:")
        address = _ip(inside, 6)
        if not bracketed or address is None:
            raise _Bad(f"{text!r} is not [IPv6 address]:port")
    elif text.count(":") > 1:
        raise _Bad(f"{text!r}: put an IPv6 address in brackets, like [::1]:4080")
    elif ":" in text:
        given, _, port = text.partition(":")
        address = _address(given)
    elif need_address:
        raise _Bad(f"{text!r} has no address: must be address:port")
    else:
        address, port = None, text
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
        raise _Bad(f"{port!r} is not a TCP port number (1-65535)")
    return address, int(port)


def _endpoint_text(address: str | None, port: int) -> str:
    if address is None:
        return str(port)
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _local_url(address: str | None, port: int) -> str:
    """The http URL a check on the host itself uses to reach a listener."""
    local = {None: "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(address, address)
    return f"http://{_endpoint_text(local, port)}"


def _server_names(value: Any) -> str:
    """nginx ``server_name``: names separated by spaces; ``_`` and ``*.name`` allowed."""
    text = _text(value)
    _allowed(text, _ALNUM + ".-_* ", "server names hold only letters, digits, '.', '-', "
                                     "a leading '*.' or '_', separated by spaces")
    names = text.split()
    if not names:
        raise _Bad("is empty; '_' matches any name")
    for name in names:
        base = name.removeprefix("*.")
        if name != "_" and not _is_host_name(base) and _ip(base, 4) is None:
            raise _Bad(f"{name!r} is not a host name, *.host name, IPv4 address or '_'")
    return " ".join(names)


def _path(value: Any, home: bool = False) -> str:
    """An absolute, normalised path of plain characters, not a system directory itself;
    with ``home``, ``~/...`` too (on the machine running pyinfra)."""
    text = _text(value)
    prefix = ""
    if home and text.startswith("~/"):
        prefix, text = "~", text[1:]
    _allowed(text, _PATH_CHARS, "a path holds only letters, digits and . _ / + @ -")
    if not text.startswith("/"):
        raise _Bad(f"must be an absolute path, not {value!r}")
    if ".." in text.split("/"):
        raise _Bad(f"{value!r} holds '..'")
    path = posixpath.normpath(re.sub("/+", "/", text))
    if prefix and path == "/":
        raise _Bad("is the home directory itself; use a directory of its own below it")
    if not prefix and path in _SYSTEM_DIRS:
        raise _Bad(f"{path} is a system directory; use a directory of its own below it, "
                   f"like {path.rstrip('/')}/omero")
    if not home:  # a path on the host, where service accounts get it
        system_tree_check(path)
    return prefix + path


def inside(path: str, tree: str) -> bool:
    """Whether ``path`` is ``tree`` or below it (both normalised)."""
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def _overlap(one: str, other: str) -> bool:
    """Whether either directory is the other or below it."""
    return inside(one, other) or inside(other, one)


def system_tree_check(path: str) -> None:
    """_Bad when ``path`` is inside a tree the system or the deploy itself keeps."""
    for tree in (*_SYSTEM_TREES, *_DEPLOY_DIRS):
        if inside(path, tree):
            owner = "this deploy" if tree in _DEPLOY_DIRS else "the system or its packages"
            raise _Bad(f"{path} is inside {tree}, which {owner} keeps; a service account given a "
                       "directory there could change what root runs or reads. Use a directory of its "
                       "own, like /srv/omero or /opt/omero")


def _secrets_dir(value: Any) -> str:
    """A directory on the machine running pyinfra that no other account can read or swap."""
    path = _path(value, home=True)
    problem = secrets.unsafe_location(path)
    if problem:
        raise _Bad(problem)
    return path


def _account(value: Any) -> str:
    text = _text(value)
    if not _ACCOUNT.fullmatch(text):
        raise _Bad(f"{text!r} is not a valid user or group name (a-z, 0-9, '_' and '-', "
                   "up to 32, not starting with a digit or '-')")
    if text in _SYSTEM_ACCOUNTS or text.startswith("systemd-"):
        raise _Bad(f"{text!r} is a system account; OMERO needs one of its own")
    return text


def _pg_name(value: Any) -> str:
    text = _text(value)
    if not _PG_NAME.fullmatch(text):
        raise _Bad(f"{text!r} is not a plain lower-case PostgreSQL name (a-z, 0-9 and '_', "
                   "up to 63, not starting with a digit)")
    if text in _PG_RESERVED or text.startswith("pg_"):
        raise _Bad(f"{text!r} is reserved in PostgreSQL (a built-in role or database, a "
                   "pg_hba.conf keyword or an SQL reserved word)")
    return text


def _url(value: Any, chars: str = _URL_CHARS) -> str:
    text = _text(value)
    shown = re.sub(r"//[^/@]*@", "//***@", text)  # no credentials in the message
    _allowed(text, chars, "a URL here holds only letters, digits and "
                          f"{' '.join(sorted(set(chars) - set(_ALNUM)))}; "
                          "percent-encode anything else (a password's too)")
    try:
        parts = urlsplit(text)
        host, _ = parts.hostname, parts.port
    except ValueError as error:
        raise _Bad(f"{shown} is not a URL ({error})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise _Bad(f"must be an http(s) URL with a host, not {shown!r}")
    _address(host)
    return text


def _config_value(key: str, value: Any) -> None:
    """A JSON-able value without control characters, at any depth."""
    if isinstance(value, str):
        bad = next((char for char in value if unicodedata.category(char) in ("Cc", "Zl", "Zp")),
                   None)
        if bad is not None:
            raise _Bad(f"the value of {key} holds the control character {bad!r} "
                       "(line breaks, tabs and the like cannot be written)")
    elif isinstance(value, float) and not math.isfinite(value):
        raise _Bad(f"the value of {key} holds {value}, which JSON has no form for")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _config_value(key, item)
    elif isinstance(value, dict):
        for inner_key, item in value.items():
            if not isinstance(inner_key, str):
                raise _Bad(f"the value of {key} holds a mapping key {inner_key!r}; JSON keys "
                           "are strings")
            _config_value(key, inner_key)
            _config_value(key, item)
    elif not isinstance(value, (bool, int, float)):
        raise _Bad(f"the value of {key} holds {value!r}, which is not a string, number, "
                   "boolean, list or mapping (leave a key out to keep OMERO's default)")


def _config(value: Any) -> dict[str, str]:
    """OMERO settings, each value as the text written for it (JSON unless a string)."""
    if not isinstance(value, dict):
        raise _Bad("must be a mapping of OMERO setting names (omero.*) to values, "
                   f"not a {type(value).__name__}")
    parsed = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _CONFIG_KEY.fullmatch(key):
            raise _Bad(f"{key!r} is not an OMERO setting name (omero. then letters, digits, "
                       "'_' and '.')")
        _config_value(key, item)
        written = item if isinstance(item, str) else json.dumps(item)
        if "'" in written:
            raise _Bad(f"the value of {key} holds a single quote, which the config file's "
                       "single-quoted `config set` lines cannot carry")
        parsed[key] = written
    return parsed


def _schedule(value: Any) -> str:
    text = _text(value)
    if not _SCHEDULE.fullmatch(text):
        raise _Bad(f"{text!r} is not a schedule: HH:MM (daily), Mon HH:MM (weekly, days Mon..Sun), "
                   "every <N>m or every <N>h")
    return text


def timer_lines(schedule: str) -> list[str]:
    """A schedule (already parsed) as the [Timer] lines of a systemd timer."""
    day, hour, minute, every, unit = _SCHEDULE.fullmatch(schedule).groups()
    if every:
        span = f"{every}{'min' if unit == 'm' else 'h'}"
        return [f"OnActiveSec={span}", f"OnUnitActiveSec={span}"]
    # Persistent: a run missed while the host was off happens at the next boot.
    return [f"OnCalendar={day + ' ' if day else ''}*-*-* {hour}:{minute}:00", "Persistent=true"]


def _keep(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or set(value) - set(_KEEP):
        raise _Bad(f"must be a mapping with keys among {', '.join(_KEEP)}, not {value!r}")
    for key, count in value.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise _Bad(f"{key} must be a whole number 0 or more, not {count!r}")
    if not any(value.values()):
        raise _Bad("keeps no backup at all; give at least one count above 0")
    return {key: value.get(key, 0) for key in _KEEP}


def _percent(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise _Bad(f"must be a whole number of percent, 0 to 100, not {value!r}")
    return value


def _ca_files(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(path, str) for path in value):
        raise _Bad("must be a list of file paths")
    installed: dict[str, str] = {}
    for path in value:
        if not os.path.isfile(path):
            raise _Bad(f"{path} is not a file")
        with open(path, encoding="ascii", errors="replace") as handle:
            text = handle.read()
        # The file is installed world-readable in the trust store.
        if "PRIVATE KEY-----" in text:
            raise _Bad(f"{path} holds a private key; give the CA certificate alone")
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise _Bad(f"{path} holds no PEM certificate")
        stem = PurePosixPath(path).stem
        _allowed(stem, _PATH_CHARS.replace("/", ""),
                 f"{path} is installed under its name, which may hold only letters, digits "
                 "and . _ + @ -")
        if stem in installed:
            raise _Bad(f"{installed[stem]} and {path} would both be installed as "
                       f"omero-extra-{stem}.crt; rename one")
        installed[stem] = path
    return tuple(value)


def _bounded(low: int, high: int) -> Callable[[Any], int]:
    def grammar(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _Bad(f"must be a whole number from {low} to {high}, not {value!r}")
        return value
    return grammar


def _nginx_size(value: Any) -> str:
    text = _text(value)
    if not re.fullmatch(r"[1-9][0-9]{0,5}[kKmMgG]?", text):
        raise _Bad(f"{text!r} is not an nginx size above 0, like 200m or 2g (0 would mean unlimited)")
    return text.lower()


def _hub_name(value: Any) -> str:
    """The hub's own site name: one host name (no wildcard, no address), lower-case."""
    text = _text(value)
    if not _is_host_name(text):
        raise _Bad(f"{text!r} is not a host name (the hub's own: dot-separated labels of letters, "
                   "digits and inner '-'; no address, no '*.' and no '_')")
    return text.lower()


def hub_name_clash(hub: str, web_names: Iterable[str]) -> str | None:
    """The name among OMERO.web's server names that is ``hub`` or takes it in (nginx's
    ``*.name`` matches names below it at any depth), or None."""
    for name in web_names:
        lowered = name.lower()
        if lowered == hub or (lowered.startswith("*.") and hub.endswith(lowered[1:])):
            return name
    return None


def _memory(value: Any) -> str:
    text = _text(value)
    match = _MEMORY.fullmatch(text)
    low, high = _MEMORY_MIB
    if match is None or not low <= int(match[1]) * (1024 if match[2] in "Gg" else 1) <= high:
        raise _Bad(f"{text!r} is not a memory size from 256M to 1024G (a whole number, then M or G)")
    return match[1] + match[2].upper()


def _cpus(value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.1 <= value <= 256:
        raise _Bad(f"must be a number of CPUs from 0.1 to 256, like 1 or 0.5, not {value!r}")
    return value


def proxy_node_major(version: str) -> int:
    """The Node.js major version configurable-http-proxy ``version`` needs."""
    release = tuple(int(part) for part in version.split("."))
    return next(node for since, node in _PROXY_NODE if release >= since)


def _web_apps(value: Any) -> tuple[WebApp, ...]:
    """``name`` or ``name==version`` of apps this deploy knows, each once."""
    if not isinstance(value, (list, tuple)):
        raise _Bad(f"must be a list of app names, not a {type(value).__name__}")
    apps: dict[str, WebApp] = {}
    for item in value:
        text = _text(item)
        name, pinned, version = text.partition("==")
        if name not in APPS:
            raise _Bad(f"{name!r} is not an app this deploy knows; known: {', '.join(APPS)}")
        if name in apps:
            raise _Bad(f"{name} is listed twice")
        apps[name] = replace(APPS[name], version=_release(version)) if pinned else APPS[name]
    return tuple(apps.values())


_GRAMMARS: dict[str, Callable[[Any], Any]] = {
    "omero_address": _optional(_address),
    "omero_service_manager": _one_of("auto", "systemd", "supervisord"),
    "omero_extra_ca_certificates": _ca_files,
    "omero_http_proxy": _optional(_url),
    "omero_pip_index_url": _optional(_url),
    "omero_npm_registry_url": _optional(_url),
    # Artifacts and passwords: their type here, the rest in load() for the hosts needing them.
    "omero_icepy_wheel": _optional(_text),
    "omero_icepy_wheel_sha256": _optional(_text),
    "omero_wheel_dir": _path,
    "omero_db_name": _pg_name,
    "omero_db_user": _pg_name,
    "omero_db_password": _optional(_text),
    "omero_db_port": _port,
    "omero_secrets_dir": _secrets_dir,
    "omero_server_artifact": _optional(_text),
    "omero_server_sha256": _optional(_text),
    "omero_ice_artifact": _optional(_text),
    "omero_ice_sha256": _optional(_text),
    "omero_ice_home": _path,
    "omero_java_version": _optional(_one_of(11, 17, 21)),
    "omero_server_basedir": _path,
    "omero_server_user": _account,
    "omero_group": _account,
    "omero_data_dir": _path,
    "omero_root_password": _optional(_text),
    "omero_server_config": _config,
    "omero_py_version": _release,
    "omero_server_db_dump_dir": _path,
    "omero_server_dropbox": _one_of(True, False),
    "omero_dropbox_version": _release,
    "omero_web_version": _release,
    "omero_web_basedir": _path,
    "omero_web_user": _account,
    "omero_web_bind": lambda value: _endpoint(value, need_address=True),
    # Each worker holds a Django process (about 100 MB): more would starve the host.
    "omero_web_workers": _optional(_bounded(1, 64)),
    "omero_web_server_host": _address,
    "omero_web_config": _config,
    "omero_nginx_listen": lambda value: _endpoint(value, need_address=False),
    "omero_nginx_server_name": _server_names,
    "omero_web_request_timeout": _bounded(10, 3600),
    "omero_nginx_client_max_body_size": _nginx_size,
    "omero_nginx_tls": _one_of("auto", "off", "self-signed", "acme"),
    # Local files: checked in load(), with the server names they must cover.
    "omero_nginx_tls_certificate": _optional(_text),
    "omero_nginx_tls_key": _optional(_text),
    "omero_nginx_tls_renew_days": _bounded(1, 365),
    "omero_nginx_https_listen": lambda value: _endpoint(value, need_address=False),
    "omero_nginx_hsts": _one_of(True, False),
    "omero_web_apps": _web_apps,
    "omero_analysis_server_name": _optional(_hub_name),
    "omero_analysis_users_group": _account,
    "omero_analysis_basedir": _path,
    # Three ports in a row (proxy, its API, the hub), unprivileged.
    "omero_analysis_port": _bounded(1024, 65533),
    "omero_analysis_omero_host": _optional(_address),
    "omero_jupyterhub_version": _release,
    "omero_jupyterlab_version": _release,
    "omero_ezomero_version": _release,
    "omero_analysis_proxy_version": _release,
    "omero_systemdspawner_version": _release,
    "omero_analysis_memory_limit": _memory,
    "omero_analysis_cpu_limit": _cpus,
    "omero_analysis_tasks_limit": _bounded(64, 65536),
    "omero_backup_local_dir": _optional(_path),
    "omero_backup_remote_dir": _path,
    "omero_backup_user": _account,
    "omero_backup_password": _optional(_text),
    "omero_backup_schedule": _schedule,
    "omero_backup_check_schedule": _schedule,
    "omero_backup_check_read_data": _percent,
    "omero_backup_keep": _keep,
    "omero_backup_link_targets": _one_of(True, False),
}


def parse_options(values: dict[str, Any], platform: Platform, host_name: str) -> dict[str, Any]:
    """Every option (``values`` has them all) parsed by its grammar, then checked against
    the others; OmeroOptionError for the first bad one."""
    parsed = {}
    for name, grammar in _GRAMMARS.items():
        try:
            parsed[name] = grammar(values[name])
        except _Bad as bad:
            raise OmeroOptionError(name, str(bad), host_name, EXAMPLES[name]) from None

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
    _check_accounts(parsed, fail)
    _check_directories(parsed, fail)
    bind_address = parsed["omero_web_bind"][0]
    if not _is_loopback(bind_address):
        # gunicorn trusts the X-Forwarded-Proto nginx sets: nothing but nginx may reach it.
        fail("omero_web_bind", f"{bind_address!r} is not a loopback address; gunicorn trusts the "
                               "headers nginx sets, so it listens on 127.0.0.1, ::1 or localhost only")
    (bind_address, bind_port), (listen_address, listen_port) = (
        parsed["omero_web_bind"], parsed["omero_nginx_listen"])
    every = (None, "0.0.0.0", "::")
    https_address, https_port = parsed["omero_nginx_https_listen"]

    def clash(one: tuple[str | None, int], other: tuple[str | None, int]) -> bool:
        return one[1] == other[1] and (one[0] == other[0] or one[0] in every or other[0] in every)

    if clash((bind_address, bind_port), (listen_address, listen_port)):
        fail("omero_nginx_listen", f"port {listen_port} is omero_web_bind's too; nginx and "
                                   "gunicorn need different ports")
    https = _tls_mode(parsed) != "off"
    if https and clash((bind_address, bind_port), (https_address, https_port)):
        fail("omero_nginx_https_listen", f"port {https_port} is omero_web_bind's too")
    if https and clash((listen_address, listen_port), (https_address, https_port)):
        fail("omero_nginx_https_listen", f"port {https_port} is omero_nginx_listen's too; HTTP "
                                         "and HTTPS need different ports")
    analysis_port = parsed["omero_analysis_port"]
    taken = {bind_port: "omero_web_bind", listen_port: "omero_nginx_listen",
             **({https_port: "omero_nginx_https_listen"} if https else {})}
    for port in range(analysis_port, analysis_port + 3):
        if port in taken:
            fail("omero_analysis_port", f"the analysis environment uses ports {analysis_port}-"
                                        f"{analysis_port + 2}, and {port} is {taken[port]}'s")
    return parsed


def _is_loopback(address: str) -> bool:
    return address == "localhost" or (_ip(address) is not None and ipaddress.ip_address(address).is_loopback)


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
            if _overlap(path, other_path):
                fail(option, f"{path} overlaps {other} ({other_path}); give each its own directory")
    base = parsed["omero_server_basedir"]
    kept = [(f"omero_server_basedir's {entry}", f"{base}/{entry}") for entry in SERVER_BASE_ENTRIES]
    kept += [(option, path) for option, path in roots if option != "omero_server_basedir"]
    kept += [("the deploy's own directory", path) for path in _DEPLOY_DIRS]
    services = [(option, parsed[option]) for option in SERVICE_DIR_OPTIONS if parsed[option]]
    for index, (option, path) in enumerate(services):
        if inside(base, path):
            fail(option, f"{path} holds omero_server_basedir ({base}), root's; a service account "
                         "writes here, so give it a directory of its own")
        if path.startswith(f"{base}/{SERVER_VERSIONS}"):
            fail(option, f"{path} is inside an unpacked OMERO.server ({base}/{SERVER_VERSIONS}*), root's; "
                         "a service account writes here, so give it a directory of its own")
        for what, tree in kept:
            if _overlap(path, tree):
                fail(option, f"{path} overlaps {what} ({tree}), root's; a service account writes "
                             "here, so give it a directory of its own")
        for other, other_path in services[:index]:
            if _overlap(path, other_path):
                fail(option, f"{path} overlaps {other} ({other_path}); each is written by another "
                             "account, so give each its own directory")


def _tls_mode(options: dict[str, Any]) -> str:
    """"off", "given" (a certificate, under "auto"), "self-signed" or "acme"."""
    mode = options["omero_nginx_tls"]
    if mode == "auto":
        return "off" if options["omero_nginx_tls_certificate"] is None else "given"
    return mode


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
    """One host's parsed options, roles and peers. ``settings.db_name`` reads ``omero_db_name``
    (parsed: paths normalised, endpoints and OMERO settings as text)."""

    options: dict[str, Any]
    platform: Platform
    roles: frozenset[str]
    service_manager: str
    # Peers, resolved from the inventory's groups.
    database_address: str | None  # where the server reaches PostgreSQL
    db_client_addresses: tuple[str, ...]  # server hosts PostgreSQL must accept
    db_listen_addresses: str
    web_server_addresses: tuple[str, ...]  # OMERO.server hosts the web connects to
    # omero_web_bind and omero_nginx_listen, parsed; IPv6 addresses without brackets.
    web_bind_host: str
    web_bind_port: int
    nginx_listen_host: str | None  # None: every address (nginx's port-only form)
    nginx_listen_port: int
    https_listen_host: str | None
    https_listen_port: int
    # omero_nginx_server_name: the names (without '_'), and whether any other Host is answered.
    server_names: tuple[str, ...]
    any_host: bool
    # "off", "given" (omero_nginx_tls_certificate), "self-signed" or "acme".
    tls_mode: str
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

    def __getattr__(self, name: str) -> Any:
        try:
            return self.options[f"omero_{name}"]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def builds_icepy(self) -> bool:
        """Whether the IcePy wheel is built on this host (no omero_icepy_wheel given)."""
        return bool(self.roles & {SERVER, WEB}) and self.icepy_wheel is None

    @property
    def java_version(self) -> int:
        return self.options["omero_java_version"] or self.platform.default_java

    # -- where things are on the host, named once ------------------------------------------
    @staticmethod
    def home_of(user: str) -> str:
        return f"/var/lib/{user}"

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
    def server_dir(self) -> str:
        return f"{self.server_basedir}/OMERO.server-{self.server_version}-ice36"

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
    def server_certs_dir(self) -> str:
        """Glacier2's TLS key, certificate and PKCS#12 store: the server user's alone, and
        outside the binary repository."""
        return f"{self.server_home}/certs"

    @property
    def server_certificate_password_file(self) -> str:
        return f"{self.server_home}/.certificate-password"

    @property
    def server_download_dir(self) -> str:
        """Where the OMERO.server zip is put."""
        return f"{self.server_basedir}/downloads"

    @property
    def dropbox_dir(self) -> str:
        """Watched by OMERO.dropbox: a folder in it per OMERO user, named as the user."""
        return f"{self.data_dir}/DropBox"

    @property
    def server_home(self) -> str:
        return self.home_of(self.server_user)

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
        return self.home_of(self.web_user)

    @property
    def web_url(self) -> str:
        """gunicorn as reached from its host, e.g. http://127.0.0.1:4080 or http://[::1]:4080."""
        return _local_url(self.web_bind_host, self.web_bind_port)

    @property
    def https(self) -> bool:
        return self.tls_mode != "off"

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

    @property
    def site_origins(self) -> tuple[str, ...]:
        """The site as browsers reach it (CSRF's trusted origins), one per server name."""
        return tuple(self.origin(name) for name in self.server_names)

    def origin(self, name: str) -> str:
        """``name`` as browsers reach nginx: scheme, name and a port other than the scheme's."""
        scheme, port = ("https", self.https_listen_port) if self.https else ("http", self.nginx_listen_port)
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
    def proxy_url(self) -> str:
        """Where nginx reaches the hub's proxy."""
        return f"http://127.0.0.1:{self.analysis_port}"

    @property
    def hub_site_path(self) -> str:
        """The hub's nginx site, beside OMERO.web's."""
        return f"{posixpath.dirname(self.platform.nginx_site_path)}/omero-jupyterhub.conf"

    @property
    def hub_public_url(self) -> str:
        """The hub as browsers reach it: / of its own name."""
        return f"{self.origin(self.analysis_server_name)}/"

    @property
    def certificate_names(self) -> tuple[str, ...]:
        """The names the site's certificate is for: OMERO.web's, and the hub's on its hosts."""
        hub = (self.analysis_server_name,) if "omero_analysis" in self.roles else ()
        return (*self.server_names, *hub)

    @property
    def hub_inaccessible_paths(self) -> tuple[str, ...]:
        """OMERO's trees no user's server needs: hidden from them (systemd InaccessiblePaths;
        '-': a tree this host has not is skipped)."""
        return (self.data_dir, self.server_config_dir, self.server_home, self.web_config_dir,
                f"{self.web_omerodir}/etc", self.web_home, self.backup_config_dir, self.backup_state_dir,
                self.hub_state_dir, self.tls_dir)

    @property
    def backs_up(self) -> bool:
        return bool(self.backup_repositories)

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

    @property
    def nginx_url(self) -> str:
        """nginx as reached from its host (every address: through 127.0.0.1)."""
        return _local_url(self.nginx_listen_host, self.nginx_listen_port)

    def nginx_check(self, path: str) -> str:
        """A curl command on the host fetching ``path`` from the site as a browser would: under
        its name, over HTTPS when on (any certificate: this checks nginx, not the trust)."""
        if self.https:
            address, port = self.https_listen_host, self.https_listen_port
        else:
            address, port = self.nginx_listen_host, self.nginx_listen_port
        local = urlsplit(_local_url(address, port))
        scheme = "https" if self.https else "http"
        if self.check_name is None:
            return f"curl -gfsk -o /dev/null {shlex.quote(f'{scheme}://{local.netloc}{path}')}"
        listener = f"[{local.hostname}]" if ":" in (local.hostname or "") else local.hostname
        resolve = f"{self.check_name}:{port}:{listener}"
        return (f"curl -gfsk -o /dev/null --resolve {shlex.quote(resolve)} "
                f"{shlex.quote(f'{scheme}://{self.check_name}:{port}{path}')}")

def address_of(host) -> str:
    """How other hosts reach ``host``: its ``omero_address``, else its name (SSH hosts)."""
    given = host.data.get("omero_address")
    if given is not None:
        try:
            return _address(given)
        except _Bad as bad:
            raise OmeroOptionError("omero_address", str(bad), host.name,
                                   EXAMPLES["omero_address"]) from None
    if host.name.startswith("@"):
        return "localhost"
    try:
        return _address(host.name)
    except _Bad as bad:
        raise OmeroDeployError(f"host {host.name}: its name is not an address other hosts can "
                               f"use ({bad}); set its omero_address") from None


def load(host, inventory, platform: Platform, pid1: str) -> Settings:
    check = _Checker(host.name)
    check.known(host.data.dict())
    options = parse_options({name: host.data.get(name, default) for name, default in DEFAULTS.items()},
                            platform, host.name)
    web_bind_host, web_bind_port = options["omero_web_bind"]
    nginx_listen_host, nginx_listen_port = options["omero_nginx_listen"]
    options["omero_web_bind"] = _endpoint_text(web_bind_host, web_bind_port)
    options["omero_nginx_listen"] = _endpoint_text(nginx_listen_host, nginx_listen_port)
    https_listen_host, https_listen_port = options["omero_nginx_https_listen"]
    options["omero_nginx_https_listen"] = _endpoint_text(https_listen_host, https_listen_port)
    names = options["omero_nginx_server_name"].split()
    server_names = tuple(name for name in names if name != "_")
    roles = frozenset(group for group in ROLES if group in host.groups)

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
    site_names = server_names  # what the certificate must cover
    if ANALYSIS in roles:
        if WEB not in roles:
            raise OmeroDeployError(
                f"host {host.name} is in {ANALYSIS} but not in {WEB}: JupyterHub is served by the "
                f"OMERO.web host's nginx (on a site of its own); put the host in {WEB} too")
        hub = options["omero_analysis_server_name"]
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
        version, node = options["omero_analysis_proxy_version"], platform.nodejs_major
        if node < proxy_node_major(version):
            check.fail("omero_analysis_proxy_version",
                       f"configurable-http-proxy {version} needs Node.js {proxy_node_major(version)} or "
                       f"later, and {platform.label} packages Node.js {node}; put the analysis "
                       "environment on Ubuntu 24.04, Debian 12 or 13 or Rocky Linux 9")
        extra["analysis_omero_host"] = options["omero_analysis_omero_host"] or web_servers[0]
    tls_mode = check.tls_mode(options, site_names) if WEB in roles else "off"
    if roles & {SERVER, WEB}:
        extra["icepy_wheel"] = check.optional_artifact(
            options, "omero_icepy_wheel", "omero_icepy_wheel_sha256", _ICEPY_WHEEL,
            "zeroc_ice-3.6.5-<tags>.whl")
    if SERVER in roles:
        if database_address is None:
            raise OmeroDeployError(
                f"host {host.name} is in {SERVER} but the inventory has no {DATABASE} host"
            )
        server_artifact = check.required_artifact(
            options, "omero_server_artifact", "omero_server_sha256", _SERVER_ZIP,
            "OMERO.server-<version>-ice36.zip")
        extra["server_artifact"] = server_artifact
        extra["server_version"] = _SERVER_ZIP.fullmatch(server_artifact.filename).group(1)
        extra["ice_artifact"] = check.required_artifact(
            options, "omero_ice_artifact", "omero_ice_sha256", _ICE_TARBALL,
            "<name of letters, digits and . _ + ->.tar.gz")
        extra["root_password"] = check.password("omero_root_password", secrets.resolve(
            options["omero_root_password"], "OMERO_ROOT_PASSWORD", options["omero_secrets_dir"],
            f"{host.name}-omero-root"))
        extra["certificate_password"] = secrets.generated(options["omero_secrets_dir"],
                                                          f"{host.name}-omero-certificate")
    if roles & {SERVER, DATABASE}:
        extra["db_password"] = check.password("omero_db_password", secrets.resolve(
            options["omero_db_password"], "OMERO_DB_PASSWORD", options["omero_secrets_dir"],
            f"{database_hosts[0].name}-db-{options['omero_db_user']}"))

    extra.update(_backups(host, inventory, options, roles, check))
    manager = options["omero_service_manager"]
    if manager == "auto":
        manager = "systemd" if pid1 == "systemd" else "supervisord"
    elif manager == "systemd" and pid1 != "systemd":
        check.fail("omero_service_manager", f"systemd is not PID 1 here (PID 1 is {pid1!r})",
                   example="auto")

    return Settings(
        options=options,
        platform=platform,
        roles=roles,
        service_manager=manager,
        database_address=database_address,
        db_client_addresses=client_addresses,
        db_listen_addresses=listen,
        web_server_addresses=web_servers,
        web_bind_host=str(web_bind_host),  # never None: omero_web_bind needs an address
        web_bind_port=web_bind_port,
        nginx_listen_host=nginx_listen_host,
        nginx_listen_port=nginx_listen_port,
        https_listen_host=https_listen_host,
        https_listen_port=https_listen_port,
        server_names=server_names,
        any_host="_" in names,
        tls_mode=tls_mode,
        **extra,
    )


# Accounts people log in with: uid 1000 and up on Debian, Ubuntu and RHEL, but nobody's.
_FIRST_LOGIN_UID, _NOBODY_UID = 1000, 65534


def _is_login_account(account: dict) -> bool:
    return _FIRST_LOGIN_UID <= account["uid"] != _NOBODY_UID


def host_directories(config: Settings, backup_host: bool) -> dict[str, str]:
    """The directories this host's roles give the deploy (option: path)."""
    options = [*(("omero_server_basedir", "omero_ice_home", "omero_data_dir", "omero_server_db_dump_dir")
                 if SERVER in config.roles else ()),
               *(("omero_web_basedir",) if WEB in config.roles else ()),
               *(("omero_wheel_dir",) if config.roles & {SERVER, WEB} else ()),
               *(("omero_analysis_basedir",) if ANALYSIS in config.roles else ()),
               *(("omero_backup_local_dir",) if config.backs_up and config.backup_local_dir else ()),
               *(("omero_backup_remote_dir",) if backup_host else ())]
    return {option: config.options[option] for option in options}


def host_accounts(config: Settings, backup_host: bool) -> dict[str, str]:
    """The accounts and groups this host's roles make (option: name)."""
    options = [*(("omero_server_user", "omero_group") if SERVER in config.roles else ()),
               *(("omero_web_user",) if WEB in config.roles else ()),
               *(("omero_backup_user",) if backup_host else ())]
    return {option: config.options[option] for option in options}


def check_host(config: Settings, host_name: str, backup_host: bool, accounts: dict, directories: dict) -> None:
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
        except _Bad as bad:
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


SFTP_HOST_ALIAS = "omero-backup-host"  # the omero_backup host in the backup's ssh_config
# Inside each OMERO host's chroot on the omero_backup host: its restic repository.
BACKUP_REPOSITORY = "/repository"
# Room for "-", a part of the host's name, "-" and a hash in an account name of 32.
_BACKUP_USER_MAX = 16


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


def _backup_remote_options(target) -> dict[str, Any]:
    """The omero_backup host's own options that its clients need, checked as it checks them."""
    remote = {}
    for option in ("omero_backup_remote_dir", "omero_backup_user"):
        try:
            remote[option] = _GRAMMARS[option](target.data.get(option, DEFAULTS[option]))
        except _Bad as bad:
            raise OmeroOptionError(option, str(bad), target.name, EXAMPLES[option]) from None
    if len(remote["omero_backup_user"]) > _BACKUP_USER_MAX:
        raise OmeroOptionError("omero_backup_user", f"is longer than {_BACKUP_USER_MAX} characters: it begins "
                               "the name of one account per OMERO host (at most 32)", target.name,
                               EXAMPLES["omero_backup_user"])
    return remote


def _backup_accounts(inventory, user: str, target_name: str) -> dict[str, str]:
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


def _backups(host, inventory, options: dict[str, Any], roles: frozenset[str], check) -> dict[str, Any]:
    """Where this host's backups go and with which credentials; on the omero_backup host,
    the OMERO hosts it keeps repositories for."""
    backup_hosts = inventory.get_group(BACKUP, [])
    if len(backup_hosts) > 1:
        raise OmeroDeployError(f"group {BACKUP} has {len(backup_hosts)} hosts; give it one")
    backed_up = roles & {DATABASE, SERVER}
    if BACKUP in host.groups and backed_up:
        raise OmeroDeployError(f"host {host.name} is in {BACKUP} and in {', '.join(sorted(backed_up))}: "
                               "a host cannot hold its own off-host backups")
    extra: dict[str, Any] = {}
    if BACKUP in host.groups:
        accounts = _backup_accounts(inventory, _backup_remote_options(host)["omero_backup_user"], host.name)
        extra["backup_clients"] = tuple(
            (secrets.file_name(name), account,
             secrets.public_ssh_key(_backup_ssh_key(inventory.get_host(name)), f"omero-backup {name}"))
            for name, account in accounts.items())
    if not backed_up or not (options["omero_backup_local_dir"] or backup_hosts):
        return extra
    repositories = []
    if options["omero_backup_local_dir"]:
        repositories.append(("local", options["omero_backup_local_dir"]))
    if backup_hosts:
        target = backup_hosts[0]
        user = _backup_remote_options(target)["omero_backup_user"]
        # The account is chrooted into its own directory: the repository's path is the chroot's.
        repositories.append(("remote", f"sftp:{SFTP_HOST_ALIAS}:{BACKUP_REPOSITORY}"))
        extra["backup_remote"] = (address_of(target), _backup_accounts(inventory, user, target.name)[host.name])
        extra["backup_ssh_key"] = _backup_ssh_key(host)
    extra["backup_repositories"] = tuple(repositories)
    extra["backup_password"] = check.password("omero_backup_password", secrets.resolve(
        options["omero_backup_password"], "OMERO_BACKUP_PASSWORD", options["omero_secrets_dir"],
        f"{host.name}-backup-repository"))
    return extra


def _backup_ssh_key(peer) -> str:
    """The key ``peer`` logs in to the omero_backup host with, kept in its secrets directory."""
    option = "omero_secrets_dir"
    try:
        secrets_dir = _GRAMMARS[option](peer.data.get(option, DEFAULTS[option]))
    except _Bad as bad:
        raise OmeroOptionError(option, str(bad), peer.name, EXAMPLES[option]) from None
    return secrets.ssh_key(secrets_dir, f"{peer.name}-backup-ssh-key")


class _Checker:
    """The checks that need more than a value: option names, passwords, artifacts."""

    def __init__(self, host_name: str):
        self.host_name = host_name

    def fail(self, option: str, problem: str, example: Any = None):
        raise OmeroOptionError(option, problem, self.host_name,
                               EXAMPLES.get(option) if example is None else example)

    def known(self, keys: Iterable[str]) -> None:
        """A misspelt option would silently fall back to its default: refuse it instead."""
        for key in keys:
            if key in _REMOVED:
                raise OmeroOptionError(key, _REMOVED[key], self.host_name)
            if key.startswith("omero_") and key not in DEFAULTS:
                close = difflib.get_close_matches(key, DEFAULTS, n=1)
                raise OmeroOptionError(key, "is not an option of this deploy"
                                       + (f"; did you mean {close[0]}?" if close else ""),
                                       self.host_name)

    def password(self, option: str, value: str) -> str:
        # Never the value in a message: it is a secret.
        weakness = passwords.weakness(value)
        if weakness:
            self.fail(option, f"{weakness}: too weak (use 12 characters or more that no guesser "
                              "tries first, or leave it unset to have one generated)")
        if not value.isascii() or not value.isprintable() or "'" in value:
            self.fail(option, "must be printable ASCII, without a single quote")
        return value

    def tls_mode(self, options, names: tuple[str, ...]) -> str:
        mode = options["omero_nginx_tls"]
        certificate, key = options["omero_nginx_tls_certificate"], options["omero_nginx_tls_key"]
        if certificate is None:
            if key is not None:
                self.fail("omero_nginx_tls_key", "is set but omero_nginx_tls_certificate is not")
            return _tls_mode(options)
        if mode != "auto":
            self.fail("omero_nginx_tls", f"is {mode!r} but omero_nginx_tls_certificate is given; "
                                         "leave it 'auto' to serve that certificate", example="auto")
        if key is None:
            self.fail("omero_nginx_tls_key", "is required with omero_nginx_tls_certificate")
        self.certificate_pair(certificate, key, names)
        return _tls_mode(options)

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
            if not _covers(covered, name.lower()):
                self.fail("omero_nginx_tls_certificate",
                          f"{certificate} is not for {name} (it names {', '.join(covered) or 'nothing'}); "
                          "browsers would refuse it. Give a certificate for every server name "
                          "(omero_nginx_server_name's, and omero_analysis_server_name on its hosts)",
                          example=EXAMPLES["omero_nginx_tls_certificate"])

    def optional_artifact(self, options, option, sha_option, name_pattern, name_hint) -> Artifact | None:
        if not options[option]:
            if options[sha_option]:
                self.fail(sha_option, f"is set but {option} is not")
            return None
        return self.required_artifact(options, option, sha_option, name_pattern, name_hint)

    def required_artifact(self, options, option, sha_option, name_pattern, name_hint) -> Artifact:
        source, sha256 = options[option], options[sha_option]
        if not source:
            self.fail(option, "is required on this host: give the URL or local path of the file "
                              "(it cannot be downloaded for you: no vendor URL is built in)")
        artifact = Artifact(source, (sha256 or "").lower())
        if artifact.is_url:
            try:
                _url(source, _ARTIFACT_URL_CHARS)
            except _Bad as bad:
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
        if not _SHA256.fullmatch(artifact.sha256):
            self.fail(sha_option, f"must be the 64 hex digit sha256 of {artifact.filename}")
        if not artifact.is_url:
            actual = _sha256_of(artifact.source)
            if actual != artifact.sha256:
                self.fail(sha_option, f"does not match {artifact.source} (its sha256 is {actual})")
        return artifact


def _covers(certificate_names: list[str], name: str) -> bool:
    """Whether a certificate for ``certificate_names`` is valid for the server name ``name``
    (RFC 6125: a wildcard stands for exactly one left-most label)."""
    if name in certificate_names:
        return True
    first, dot, rest = name.partition(".")
    return bool(dot) and first != "*" and f"*.{rest}" in certificate_names


def _sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
