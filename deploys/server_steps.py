"""What OMERO.server needs made the same way on a host (deploys/server.py, the operations and
facts) and in the container image (omero_image/entrypoint.py): Glacier2's certificate, the
server's own configuration, the schema step.

Standard library only: the image's entrypoint ships this file as ``omero_server_steps`` and
runs it with the system Python.
"""

import re
import shlex

# Glacier2's TLS: the certificate below, and no anonymous ciphers (OMERO's default list allows them).
TLS_PROFILE = (("omero.glacier2.IceSSL.CertFile", "server.p12"), ("omero.glacier2.IceSSL.CAs", "server.pem"))
TLS_CIPHERS = (("omero.glacier2.IceSSL.Ciphers", "HIGH:!DHE"), ("omero.glacier2.IceSSL.Protocols", "TLS1_2,TLS1_3"),
               ("omero.glacier2.IceSSL.ProtocolVersionMax", "TLS1_3"))
STORE = TLS_PROFILE[0][1]

# The schema's version (OMERO5.4__0); a database without the schema has no dbpatch table.
SCHEMA_QUERY = ("SELECT 'schema:' || currentversion || '__' || currentpatch FROM dbpatch "
                "ORDER BY id DESC LIMIT 1")
SCHEMA_SCRIPT = "omero-schema.sql"  # written by `omero db script` into the server user's home


def certificate_command(certs: str, password_file: str) -> str:
    """Shell that makes Glacier2's certificate in ``certs``, as omero-certificates makes it
    (self-signed: OMERO's clients do not verify it; it lets TLS run without anonymous
    ciphers), its PKCS#12 store's password read from ``password_file``, never a command
    line; an existing key is kept, the store renamed into place whole. Run as its owner."""
    key, pem, store = (shlex.quote(f"{certs}/{name}") for name in ("server.key", "server.pem", STORE))
    partial = shlex.quote(f"{certs}/{STORE}.partial")
    return (f"umask 077 && ([ -s {key} ] || openssl genrsa -out {key} 2048) && "
            f"openssl req -new -x509 -subj /O=OMERO.server/CN=OMERO.server -days 3650 "
            f"-key {key} -out {pem} && "
            f"openssl pkcs12 -export -out {partial} -inkey {key} -in {pem} -name server "
            "-keypbe aes-256-cbc -certpbe aes-256-cbc -macalg SHA256 "
            f"-passout file:{shlex.quote(password_file)} && mv {partial} {store}")


def config_line(key: str, value: str) -> str:
    """One `omero load` line: ``--`` so a value starting with ``-`` is no option, the value
    quoted as the CLI splits it."""
    return f"config set -- {shlex.quote(key)} {shlex.quote(value)}\n"


def server_config(db: dict, data_dir: str, certs: str, store_password: str,
                  site: tuple[tuple[str, str], ...] = ()) -> str:
    """The server's whole configuration, as `omero load` takes it (``config drop default``
    first): the database (``db``: host, port, name, user, password), the binary repository,
    Glacier2's TLS, then the ``site``'s own (key, value) settings."""
    settings = (("omero.db.host", db["host"]), ("omero.db.port", str(db["port"])), ("omero.db.name", db["name"]),
                ("omero.db.user", db["user"]), ("omero.db.pass", db["password"]), ("omero.data.dir", data_dir),
                ("omero.glacier2.IceSSL.DefaultDir", certs), *TLS_PROFILE,
                ("omero.glacier2.IceSSL.Password", store_password), *TLS_CIPHERS, *site)
    return "config drop default\n" + "".join(config_line(key, value) for key, value in settings)


def schema_version(output: str) -> str | None:
    """The schema's version in psql's output of SCHEMA_QUERY, or None (no schema)."""
    match = re.search(r"^schema:(\S+)$", output, re.M)
    return match.group(1) if match else None


def schema_script(omero: str, script: str, root_password: str) -> list[str]:
    """``omero db script``: the schema's SQL, root's password hashed in it, into ``script``
    (run with umask 077; the password is the last word, for a caller that hides it)."""
    return [omero, "db", "script", "--file", script, "--password", root_password]
