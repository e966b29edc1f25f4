"""Passwords: taken from the inventory or environment, else generated once and kept.

Generated secrets live on the machine running pyinfra (one 0600 file each) so that
every host of an inventory, and every later run, uses the same value. PostgreSQL only
ever receives a salted SCRAM-SHA-256 verifier (``deploys.scram``), never the password itself.
"""

import os
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_ssh_private_key,
)

from .errors import OmeroDeployError


def file_name(key: str) -> str:
    """``key`` (an inventory host name and a suffix) as a plain file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_")


def _kept(secrets_dir: str, key: str, make: Callable[[], str]) -> str:
    """The secret kept under ``key``, made by ``make()`` and kept (0600) the first time."""
    directory = Path(secrets_dir).expanduser()
    path = directory / file_name(key)
    if path.exists():
        return path.read_text()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def unsafe_location(secrets_dir: str) -> str | None:
    """Why another account could read or swap ``secrets_dir`` on this machine, or None.

    Every directory on the way must be this user's or root's and writable by no one else
    (a sticky one like /tmp is safe for what is already in it); where it is still to be made,
    no one else may make it first.
    """
    path = Path(secrets_dir).expanduser()
    mine = (0, os.getuid())
    missing = None
    for directory in (path, *path.parents):
        try:
            status = directory.stat()
        except FileNotFoundError:
            missing = directory
            continue
        if status.st_uid not in mine:
            return f"{directory} belongs to uid {status.st_uid}, who could read or replace the secrets"
        open_to_others = status.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if open_to_others and not (status.st_mode & stat.S_ISVTX):
            return f"{directory} is writable by others, who could replace the secrets"
        if open_to_others and missing is not None:
            return (f"{missing} would be made in {directory}, which everyone may write in (another "
                    "account could make it first); keep the secrets in a directory of your own")
        if directory == path and status.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            return f"{directory} is open to other accounts (mode {stat.S_IMODE(status.st_mode):o}); chmod 700 it"
        missing = None
    return None


def resolve(given: str | None, env_var: str, secrets_dir: str, key: str) -> str:
    """The inventory's value, else ``$env_var``, else the kept (or a newly generated) secret."""
    if given:
        return given
    if os.environ.get(env_var):
        return os.environ[env_var]
    return generated(secrets_dir, key)


def generated(secrets_dir: str, key: str, length: int = 24) -> str:
    """A password of ``length`` random bytes (URL-safe base64: letters, digits, '-', '_'),
    made once and kept under ``key``: for what no site needs to choose."""
    return _kept(secrets_dir, key, lambda: secrets.token_urlsafe(length) + "\n").strip()


def keep(secrets_dir: str, key: str, value: str) -> None:
    """``value`` kept under ``key`` too (another name the same secret is looked up by); a
    different secret already there is refused, never replaced."""
    kept = _kept(secrets_dir, key, lambda: value + "\n").strip()
    if kept != value:
        path = Path(secrets_dir).expanduser() / file_name(key)
        raise OmeroDeployError(f"{path} holds another secret than the one it would be kept as; if it is "
                               "a stale one (this host's from another site), move it away")


def ssh_key(secrets_dir: str, key: str) -> str:
    """An Ed25519 private key in OpenSSH's format, generated once and kept like a password."""
    return _kept(secrets_dir, key, lambda: Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()).decode())


def public_ssh_key(private_key: str, comment: str) -> str:
    """The authorized_keys form (``ssh-ed25519 AAAA... comment``) of a private key."""
    public = load_ssh_private_key(private_key.encode(), None).public_key()
    return f"{public.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()} {comment}"
