"""Grammars of the names an option gives on a host or on the machine running pyinfra: paths
(never inside what the system or the deploy keeps), accounts, PostgreSQL names, CA files."""

import os
import posixpath
import re
from pathlib import PurePosixPath
from typing import Any

from . import secrets
from .grammar import ALNUM, Bad, accepts, allowed, parse_text
from .layout import DEPLOY_DIRS

PATH_CHARS = ALNUM + "._/+@-"
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


@accepts("an absolute path of `A-Z a-z 0-9 . _ / + @ -` only, no `..`, not `/` or a system directory itself "
         "(`/etc`, `/usr`, `/var`, `/var/lib`, `/opt`, `/home`, `/tmp`, ...; directories below those are fine), "
         "and not inside a tree the system, its packages or the deploy keep (`/etc`, `/usr`, `/root`, `/boot`, "
         "`/run`, `/tmp`, `/var/tmp`, `/dev`, `/var/spool`, `/var/lib/dpkg`, `/var/lib/postgresql`, "
         "`/var/lib/omero-pyinfra`, `/opt/omero/downloads`, ...); on the host, not a link into such a tree, "
         "and every directory above it root's and writable by no one else")
def parse_path(value: Any, home: bool = False) -> str:
    """An absolute, normalised path of plain characters, not a system directory itself;
    with ``home``, ``~/...`` too (on the machine running pyinfra)."""
    text = parse_text(value)
    prefix = ""
    if home and text.startswith("~/"):
        prefix, text = "~", text[1:]
    allowed(text, PATH_CHARS, "a path holds only letters, digits and . _ / + @ -")
    if not text.startswith("/"):
        raise Bad(f"must be an absolute path, not {value!r}")
    if ".." in text.split("/"):
        raise Bad(f"{value!r} holds '..'")
    path = posixpath.normpath(re.sub("/+", "/", text))
    if prefix and path == "/":
        raise Bad("is the home directory itself; use a directory of its own below it")
    if not prefix and path in _SYSTEM_DIRS:
        raise Bad(f"{path} is a system directory; use a directory of its own below it, "
                  f"like {path.rstrip('/')}/omero")
    if not home:  # a path on the host, where service accounts get it
        system_tree_check(path)
    return prefix + path


def inside(path: str, tree: str) -> bool:
    """Whether ``path`` is ``tree`` or below it (both normalised)."""
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def overlap(one: str, other: str) -> bool:
    """Whether either directory is the other or below it."""
    return inside(one, other) or inside(other, one)


def system_tree_check(path: str) -> None:
    """Bad when ``path`` is inside a tree the system or the deploy itself keeps."""
    for tree in (*_SYSTEM_TREES, *DEPLOY_DIRS):
        if inside(path, tree):
            owner = "this deploy" if tree in DEPLOY_DIRS else "the system or its packages"
            raise Bad(f"{path} is inside {tree}, which {owner} keeps; a service account given a "
                      "directory there could change what root runs or reads. Use a directory of its "
                      "own, like /srv/omero or /opt/omero")


@accepts('a path on the machine running pyinfra: absolute or starting with `~/`, of `A-Z a-z 0-9 . _'
         " / + @ -` only, no `..`; it and every directory above it the running user's or root's and "
         'writable by no one else (a sticky directory such as `/tmp` only for what already exists in'
         ' it), the directory itself closed to others')
def parse_secrets_dir(value: Any) -> str:
    """A directory on the machine running pyinfra that no other account can read or swap."""
    path = parse_path(value, home=True)
    problem = secrets.unsafe_location(path)
    if problem:
        raise Bad(problem)
    return path


@accepts('a user or group name (`[a-z_][a-z0-9_-]{0,31}`), not a system account (`root`, `daemon`, '
         '`nobody`, `www-data`, `nginx`, `postgres`, `sshd`, `systemd-*`, ...)')
def parse_account(value: Any) -> str:
    text = parse_text(value)
    if not _ACCOUNT.fullmatch(text):
        raise Bad(f"{text!r} is not a valid user or group name (a-z, 0-9, '_' and '-', "
                  "up to 32, not starting with a digit or '-')")
    if text in _SYSTEM_ACCOUNTS or text.startswith("systemd-"):
        raise Bad(f"{text!r} is a system account; OMERO needs one of its own")
    return text


@accepts('`[a-z_][a-z0-9_]{0,62}`, not a PostgreSQL role or database of its own (`postgres`, '
         '`template0`, `template1`, `public`, `pg_*`), a `pg_hba.conf` keyword (`all`, `sameuser`, '
         '`samerole`, `replication`) or an SQL reserved word (`user`, `select`, ...)')
def parse_pg_name(value: Any) -> str:
    text = parse_text(value)
    if not _PG_NAME.fullmatch(text):
        raise Bad(f"{text!r} is not a plain lower-case PostgreSQL name (a-z, 0-9 and '_', "
                  "up to 63, not starting with a digit)")
    if text in _PG_RESERVED or text.startswith("pg_"):
        raise Bad(f"{text!r} is reserved in PostgreSQL (a built-in role or database, a "
                  "pg_hba.conf keyword or an SQL reserved word)")
    return text


@accepts('a list of existing local files, each holding a PEM certificate and no private key, no two '
         'with the same name (each is installed as `omero-extra-<name>.crt`)')
def parse_ca_files(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(path, str) for path in value):
        raise Bad("must be a list of file paths")
    installed: dict[str, str] = {}
    for path in value:
        if not os.path.isfile(path):
            raise Bad(f"{path} is not a file")
        with open(path, encoding="ascii", errors="replace") as handle:
            text = handle.read()
        # The file is installed world-readable in the trust store.
        if "PRIVATE KEY-----" in text:
            raise Bad(f"{path} holds a private key; give the CA certificate alone")
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise Bad(f"{path} holds no PEM certificate")
        stem = PurePosixPath(path).stem
        allowed(stem, PATH_CHARS.replace("/", ""),
                f"{path} is installed under its name, which may hold only letters, digits "
                "and . _ + @ -")
        if stem in installed:
            raise Bad(f"{installed[stem]} and {path} would both be installed as "
                      f"omero-extra-{stem}.crt; rename one")
        installed[stem] = path
    return tuple(value)
