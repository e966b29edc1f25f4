"""The rows of the options table (deploys/options.py): how a row is made and read, and the
phrases several rows' documentation shares."""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def option(grammar: Callable[[Any], Any], default: Any, doc: str, example: Any = None,
           name: str | None = None, checks: str = "") -> Any:
    """A row of the table: a field of ``Options`` with its grammar, default (as an inventory
    gives it), documentation, a good value for messages (the default when None), and what is
    checked beyond the grammar (Markdown, for docs/malformed-input.md)."""
    return dataclasses.field(metadata={"grammar": grammar, "default": default, "doc": doc,
                                       "example": example, "name": name, "checks": checks})


@dataclass(frozen=True)
class Option:
    """A row of the table, as the deploy, the docs and the tests read it."""

    name: str
    field: str  # Options' attribute
    grammar: Callable[[Any], Any]
    default: Any
    doc: str
    example: Any
    checks: str

    @property
    def good_value(self) -> Any:
        return self.default if self.example is None else self.example


def rows_of(table) -> tuple[Option, ...]:
    """The rows of ``table`` (a dataclass of ``option()`` fields), in its order."""
    return tuple(
        Option(name=row.metadata["name"] or f"omero_{row.name}", field=row.name, grammar=row.metadata["grammar"],
               default=row.metadata["default"], doc=row.metadata["doc"], example=row.metadata["example"],
               checks=row.metadata["checks"])
        for row in dataclasses.fields(table))


# The sha256 of an empty file: the form of a good value, for error messages.
SHA256_EXAMPLE = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# What is checked beyond one value's grammar, shared by several rows (docs/malformed-input.md).
ARTIFACT = ("an `http(s)://` URL without credentials (curl's command line is every account's to see) or an "
             "existing local file, named like {}; required on omero_server hosts, with its sha256")
SHA = "the 64 hex digit sha256 of the file (a local file's is compared); set only with the file"
PASSWORD = ("a password no guesser tries first (see below), printable ASCII without a single quote; "
             "unset: generated")
ACCOUNTS = ("each role its own account or group: omero_server_user, omero_web_user, omero_group, "
             "omero_backup_user and omero_analysis_users_group all different")
USERS = (f"{ACCOUNTS}; neither service user the platform's nginx user; on the host, not a login "
          "account nor an account this deploy did not make")
ROOT_TREE = ("root's trees (omero_server_basedir, omero_web_basedir, omero_ice_home, omero_wheel_dir, "
              "omero_analysis_basedir) apart from each other")
SERVICE_DIR = ("written by a service account (omero_data_dir, omero_server_db_dump_dir, omero_backup_local_dir): "
                "apart from root's trees (beside the server base's own entries is fine) and from each other")
TLS_FILE = ("a local file, given with the other of the pair (omero_nginx_tls then `auto`): the chain, leaf "
             "first, covers every server name, matches the key and has not expired; the key unencrypted PEM")
