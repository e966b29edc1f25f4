"""Facts about OMERO hosts that pyinfra does not ship."""

import ipaddress
import re
import shlex
from datetime import datetime, timezone

from pyinfra.api import FactBase
from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus

from deploys import server_steps

_DOWN = "__DOWN__"


class _NoneWhenAbsent(FactBase):
    """A fact that is None when what it looks for is absent (or not there yet)."""

    @staticmethod
    def default():
        return None


class InitSystem(FactBase):
    """The name of PID 1 (``systemd`` on a booted VM; a shell, tini or supervisord in containers)."""

    def command(self) -> str:
        return "cat /proc/1/comm 2>/dev/null || echo unknown"

    def process(self, output) -> str:
        return output[0].strip() if output else "unknown"


class InContainer(FactBase):
    """Whether the host is a container (``systemd-detect-virt --container``), where systemd
    cannot set up every sandbox a distribution's unit asks for."""

    def command(self) -> str:
        return "systemd-detect-virt --container 2>/dev/null || true"

    def process(self, output) -> bool:
        return bool(output) and output[0].strip() not in ("", "none")


class SupervisorPrograms(_NoneWhenAbsent):
    """``{program: state}`` from a running supervisord; None when supervisord is not running."""

    def requires_command(self, conf: str) -> str:
        return "supervisorctl"

    def command(self, conf: str) -> str:
        ctl = f"supervisorctl -c {shlex.quote(conf)}"
        return f"if {ctl} pid >/dev/null 2>&1; then {ctl} status || true; else echo {_DOWN}; fi"

    def process(self, output):
        if output and output[0].strip() == _DOWN:
            return None
        programs = {}
        for line in output:
            parts = line.split()
            if len(parts) >= 2:
                programs[parts[0]] = parts[1]
        return programs


class PostgresRoleVerifier(_NoneWhenAbsent):
    """The stored password verifier of a role ('' without one); None when the role is absent
    or PostgreSQL is not running yet (planning a first deploy).

    Run it as the postgres user (``_su_user="postgres"``).
    """

    def requires_command(self, role: str, port: int) -> str:
        return "psql"

    def command(self, role: str, port: int) -> str:
        query = f"SELECT 'role:' || coalesce(rolpassword, '') FROM pg_authid WHERE rolname = '{role}'"
        return f"psql -XAt -p {port} -c {shlex.quote(query)} 2>/dev/null || true"

    def process(self, output):
        for line in output:
            if line.startswith("role:"):
                return line[len("role:"):]
        return None


class PostgresDatabaseOwner(_NoneWhenAbsent):
    """``(owner, encoding)`` of a database; None when it is absent or PostgreSQL is not
    running yet. Run it as the postgres user."""

    def requires_command(self, database: str, port: int) -> str:
        return "psql"

    def command(self, database: str, port: int) -> str:
        query = ("SELECT 'db:' || pg_get_userbyid(datdba) || ':' || pg_encoding_to_char(encoding) "
                 f"FROM pg_database WHERE datname = '{database}'")
        return f"psql -XAt -p {port} -c {shlex.quote(query)} 2>/dev/null || true"

    def process(self, output):
        for line in output:
            if line.startswith("db:"):
                owner, encoding = line[len("db:"):].rsplit(":", 1)
                return owner, encoding
        return None


class OmeroServerVersion(_NoneWhenAbsent):
    """Version of the OMERO.server the ``OMERO.server`` symlink points at; None before the first install."""

    def command(self, symlink: str) -> str:
        return f"readlink {shlex.quote(symlink)} || true"

    def process(self, output):
        match = re.search(r"OMERO\.server-(\d+\.\d+\.\d+)-ice36/?$", output[0]) if output else None
        return match.group(1) if match else None


class OmeroSchemaVersion(_NoneWhenAbsent):
    """``OMERO5.4__0`` style version of the OMERO schema in the database; None when it has
    none, or when the database cannot be reached yet (planning a first deploy: the schema
    step then runs, and fails loudly if the database is still unreachable).

    Connects as the database role with the server user's ``~/.pgpass``, so no secret is
    on a command line. Run it as the server user.
    """

    def requires_command(self, **kwargs) -> str:
        return "psql"

    def command(self, host: str, port: int, database: str, user: str) -> str:
        query = server_steps.SCHEMA_QUERY
        return (f"psql -XAtw -h {shlex.quote(host)} -p {port} -U {shlex.quote(user)} "
                f"-d {shlex.quote(database)} -c {shlex.quote(query)} 2>&1 || true")

    def process(self, output):
        return server_steps.schema_version("\n".join(output))


class FirstFile(_NoneWhenAbsent):
    """The first file matching a shell glob; None when nothing matches."""

    def command(self, pattern: str) -> str:
        return f"for f in {shell_path(pattern)}; do [ -f \"$f\" ] && echo \"$f\" && break; done; true"

    def process(self, output):
        return output[0].strip() if output else None


class SystemdUnits(FactBase):
    """What systemd knows of each of ``units``, from one ``systemctl show``: whether it is
    enabled and running (as pyinfra's ``SystemdEnabled`` and ``SystemdStatus`` say them),
    whether its unit file or a drop-in changed on disk since it was loaded, and the files it
    loaded (its unit file, its drop-ins: a new drop-in directory goes unnoticed until a reload).
    A unit systemd does not know is neither enabled nor running."""

    default = dict

    def requires_command(self, units: tuple[str, ...]) -> str:
        return "systemctl"

    def command(self, units: tuple[str, ...]) -> str:
        names = " ".join(shlex.quote(unit) for unit in units)
        return ("systemctl show --all -p Id -p UnitFileState -p SubState -p NeedDaemonReload "
                f"-p FragmentPath -p DropInPaths {names}")

    def process(self, output) -> dict[str, dict]:
        shown: list[dict[str, str]] = [{}]
        for line in output:  # one block of KEY=value lines per unit, blank lines between
            key, equals, value = line.strip().partition("=")
            if equals:
                shown[-1][key] = value
            elif shown[-1]:
                shown.append({})
        return {properties["Id"]: {
            "enabled": properties.get("UnitFileState") in SystemdEnabled.state_values,
            "running": properties.get("SubState") in SystemdStatus.state_values,
            "needs_reload": properties.get("NeedDaemonReload") == "yes",
            "loaded": tuple(properties.get("FragmentPath", "").split() + properties.get("DropInPaths", "").split()),
        } for properties in shown if properties.get("Id")}


def shell_path(path: str) -> str:
    """``path`` for a shell: each segment quoted, except segments holding a ``*`` (globs
    written by this deploy, e.g. ``python3*``), so they still expand."""
    return "/".join(segment if "*" in segment else shlex.quote(segment) if segment else ""
                    for segment in path.split("/"))


class ChangedSince(FactBase):
    """Those of ``paths`` (globs allowed) modified after ``reference`` was: every one that
    exists when ``reference`` does not. ``find -newer`` compares to the nanosecond."""

    def command(self, paths: tuple[str, ...], reference: str) -> str:
        if not paths:
            return "true"  # find would look at the working directory
        ref, listed = shlex.quote(reference), " ".join(shell_path(p) for p in paths)
        return (f"if [ -e {ref} ]; then find {listed} -maxdepth 0 -newer {ref} 2>/dev/null; "
                f"else for f in {listed}; do [ -e \"$f\" ] && echo \"$f\"; done; fi; true")

    def process(self, output) -> list[str]:
        return [line.strip() for line in output if line.strip()]


class HostAddresses(FactBase):
    """The host's addresses but loopback and link-local (``hostname -I``), normalised."""

    @staticmethod
    def default():
        return []

    def command(self) -> str:
        return "hostname -I 2>/dev/null || true"

    def process(self, output) -> list[str]:
        addresses = []
        for word in " ".join(output).split():
            try:
                addresses.append(str(ipaddress.ip_address(word)))
            except ValueError:
                continue
        return addresses


class TlsCertificate(_NoneWhenAbsent):
    """A certificate on the host: ``{"not_after": datetime, "names": [sorted subject
    alternative names], "key_matches": bool}``; None when it or its key is absent or
    unreadable (or openssl is not installed yet)."""

    def command(self, certificate: str, key: str) -> str:
        cert, key = shlex.quote(certificate), shlex.quote(key)
        return (f"[ -r {cert} ] && [ -r {key} ] && command -v openssl >/dev/null || exit 0; "
                f"openssl x509 -in {cert} -noout -enddate -ext subjectAltName 2>/dev/null || exit 0; "
                f"a=$(openssl x509 -in {cert} -noout -pubkey 2>/dev/null | sha256sum); "
                f"b=$(openssl pkey -in {key} -pubout 2>/dev/null | sha256sum); "
                "if [ \"$a\" = \"$b\" ]; then echo key=match; else echo key=mismatch; fi")

    def process(self, output):
        found: dict = {"names": [], "key_matches": False}
        for line in output:
            line = line.strip()
            if line.startswith("notAfter="):
                found["not_after"] = datetime.strptime(line[len("notAfter="):], "%b %d %H:%M:%S %Y %Z").replace(
                    tzinfo=timezone.utc)
            elif line.startswith(("DNS:", "IP Address:")):
                for entry in line.split(", "):
                    kind, _, value = entry.partition(":")
                    found["names"].append(str(ipaddress.ip_address(value)) if kind == "IP Address" else value)
            elif line.startswith("key="):
                found["key_matches"] = line == "key=match"
        if "not_after" not in found:
            return None
        found["names"].sort()
        return found


class BackupRepositoriesPresent(FactBase):
    """Names of this host's backup repositories that exist (and can be read), as
    ``omero-backup present`` finds them; none while the program is not installed yet."""

    def command(self, program: str) -> str:
        return f"if [ -x {shlex.quote(program)} ]; then {shlex.quote(program)} present; fi"

    def process(self, output) -> list[str]:
        return [line.strip() for line in output if line.strip()]


class Accounts(FactBase):
    """The accounts among ``names`` that exist: ``{name: {"uid": int, "home": str, "shell": str}}``."""

    @staticmethod
    def default():
        return {}

    def command(self, names: tuple[str, ...]) -> str:
        # getent without a name would list every account.
        return f"getent passwd {' '.join(shlex.quote(name) for name in names)} || true" if names else "true"

    def process(self, output) -> dict:
        accounts = {}
        for line in output:
            fields = line.split(":")
            if len(fields) == 7 and fields[2].isdigit():
                accounts[fields[0]] = {"uid": int(fields[2]), "home": fields[5], "shell": fields[6]}
        return accounts


class UserAccount(FactBase):
    """The account ``user`` as pyinfra's ``server.user`` compares it: ``{"home", "shell",
    "group": primary group, "groups": [secondary groups]}``, None when there is none (pyinfra's
    Users fact asks this of every account, with its password hash and last login)."""

    @staticmethod
    def default():
        return None

    def command(self, user: str) -> str:
        name = shlex.quote(user)
        return (f"if e=$(getent passwd {name}); then echo \"passwd $e\"; echo \"group $(id -gn {name})\"; "
                f"echo \"groups $(id -Gn {name})\"; fi")

    def process(self, output) -> dict | None:
        found = {}
        for line in output:
            kind, _, rest = line.partition(" ")
            found[kind] = rest
        fields = found.get("passwd", "").split(":")
        if len(fields) != 7 or "group" not in found:
            return None
        primary = found["group"].strip()
        return {"home": fields[5] or None, "shell": fields[6] or None, "group": primary,
                "groups": [group for group in found.get("groups", "").split() if group != primary]}


class DirectoryOwners(FactBase):
    """Where each of ``paths`` really is (symbolic links followed) and, for every directory
    above it that exists, its owner's uid and mode:
    ``{"resolved": {path: real path}, "above": {directory: (uid, mode)}}``."""

    @staticmethod
    def default():
        return {"resolved": {}, "above": {}}

    def command(self, paths: tuple[str, ...]) -> str:
        if not paths:
            return "true"
        quoted = " ".join(shlex.quote(path) for path in paths)
        # Every directory above each, gathered without a command per directory, listed by one find.
        return (f"set --; for p in {quoted}; do r=$(readlink -m -- \"$p\"); echo \"path $p $r\"; d=$r; "
                "while [ \"$d\" != / ]; do d=${d%/*}; d=${d:-/}; set -- \"$@\" \"$d\"; done; done; "
                "[ $# -eq 0 ] || find \"$@\" -maxdepth 0 -type d -printf 'dir %U %m %p\\n' 2>/dev/null; true")

    def process(self, output) -> dict:
        facts = self.default()
        for line in output:
            kind, _, rest = line.partition(" ")
            if kind == "path":
                path, _, resolved = rest.partition(" ")
                facts["resolved"][path] = resolved
            elif kind == "dir":
                uid, mode, directory = rest.split(" ", 2)
                facts["above"][directory] = (int(uid), int(mode, 8))
        return facts


# What keeps the package database locked: a run killed mid-install leaves it going on the host.
PACKAGE_MANAGERS = ("apt", "apt-get", "aptitude", "dpkg", "unattended-upgr", "dnf", "yum", "rpm", "packagekitd")


def package_manager_running(listed: bool = False) -> str:
    """A shell test: true while a package manager runs (with ``listed``, printing
    ``/proc/<pid>/comm:<name>`` for each). From /proc: minimal hosts have no pgrep."""
    names = "|".join(PACKAGE_MANAGERS)
    return f"grep -{'H' if listed else 'q'}xE '{names}' /proc/[0-9]*/comm 2>/dev/null"


class PackageManagerActivity(FactBase):
    """Package managers running on the host, and whether dpkg was cut off half-way:
    ``{"running": [(pid, name)], "interrupted": bool}``."""

    @staticmethod
    def default():
        return {"running": [], "interrupted": False}

    def command(self) -> str:
        # dpkg keeps what it is doing in updates/ until it is done (apt then asks for --configure -a).
        return (f"{package_manager_running(listed=True)}; "
                "[ -n \"$(ls -A /var/lib/dpkg/updates 2>/dev/null)\" ] && echo interrupted || true")

    def process(self, output) -> dict:
        activity = self.default()
        for line in output:
            found = re.fullmatch(r"/proc/([0-9]+)/comm:(\S+)", line.strip())
            if found:
                activity["running"].append((int(found.group(1)), found.group(2)))
            elif line.strip() == "interrupted":
                activity["interrupted"] = True
        return activity
