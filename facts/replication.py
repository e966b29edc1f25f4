"""Facts about PostgreSQL streaming replication: a standby's data directory, the primary's
replication slots, a running server's setting. The psql ones run as the postgres user
(``_su_user="postgres"``) and are None (or empty) while PostgreSQL is not running."""

import re
import shlex

from pyinfra.api import FactBase

# key = 'value' in postgresql.auto.conf ('' is a quote inside the value).
_AUTO_CONF_LINE = re.compile(r"^\s*(\w+)\s*=\s*'((?:[^']|'')*)'\s*$")
# key=value in a libpq connection string, the value bare or in quotes with \ escapes.
_CONNINFO_PAIR = re.compile(r"\s*(\w+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S+))")


def parse_conninfo(text: str) -> dict[str, str]:
    """A libpq ``key=value ...`` connection string as a dict; what does not parse is left out."""
    return {pair.group(1): re.sub(r"\\(.)", r"\1", pair.group(2)) if pair.group(2) is not None else pair.group(3)
            for pair in _CONNINFO_PAIR.finditer(text)}


class PostgresStandby(FactBase):
    """What makes ``data_dir`` a standby: ``{"standby": standby.signal is there,
    "conninfo": primary_conninfo as a dict, "slot": primary_slot_name or None}`` (the last
    setting of each in postgresql.auto.conf, where ``pg_basebackup -R`` writes them)."""

    @staticmethod
    def default():
        return {"standby": False, "conninfo": {}, "slot": None}

    def command(self, data_dir: str) -> str:
        quoted = shlex.quote(data_dir)
        return (f"if [ -e {quoted}/standby.signal ]; then echo standby.signal; fi; "
                f"grep -E '^[[:space:]]*primary_(conninfo|slot_name)[[:space:]]*=' {quoted}/postgresql.auto.conf "
                "2>/dev/null || true")

    def process(self, output) -> dict:
        found = self.default()
        for line in output:
            if line.strip() == "standby.signal":
                found["standby"] = True
                continue
            match = _AUTO_CONF_LINE.match(line)
            if not match:
                continue
            key, value = match.group(1), match.group(2).replace("''", "'")
            if key == "primary_conninfo":
                found["conninfo"] = parse_conninfo(value)
            elif key == "primary_slot_name":
                found["slot"] = value or None
        return found


class PostgresRoleReplication(FactBase):
    """Whether the role ``role`` has the REPLICATION attribute (False when absent or not running)."""

    @staticmethod
    def default():
        return False

    def requires_command(self, role: str, port: int) -> str:
        return "psql"

    def command(self, role: str, port: int) -> str:
        query = f"SELECT 'replication:' || rolreplication FROM pg_roles WHERE rolname = '{role}'"
        return f"psql -XAt -p {port} -c {shlex.quote(query)} 2>/dev/null || true"

    def process(self, output) -> bool:
        return "replication:true" in [line.strip() for line in output]


class PostgresReplicationSlots(FactBase):
    """``{slot name: active}`` of the physical replication slots whose name starts with ``prefix``."""

    @staticmethod
    def default():
        return {}

    def requires_command(self, prefix: str, port: int) -> str:
        return "psql"

    def command(self, prefix: str, port: int) -> str:
        query = ("SELECT 'slot:' || slot_name || ':' || active FROM pg_replication_slots "
                 f"WHERE slot_type = 'physical' AND starts_with(slot_name, '{prefix}')")
        return f"psql -XAt -p {port} -c {shlex.quote(query)} 2>/dev/null || true"

    def process(self, output) -> dict:
        slots = {}
        for line in output:
            if line.startswith("slot:"):
                name, _, active = line[len("slot:"):].rpartition(":")
                slots[name] = active == "true"
        return slots


class PostgresListening(FactBase):
    """Where the running server listens, ``(listen_addresses, port)`` as it reads them (asked
    on ``port`` as the postgres account, from root); None when it does not answer there."""

    @staticmethod
    def default():
        return None

    def requires_command(self, port: int) -> str:
        return "psql"

    def command(self, port: int) -> str:
        query = "SELECT 'listen:' || current_setting('listen_addresses') || '|' || current_setting('port')"
        return f"runuser -u postgres -- psql -XAt -p {int(port)} -c {shlex.quote(query)} 2>/dev/null || true"

    def process(self, output):
        for line in output:
            if line.startswith("listen:"):
                addresses, _, port = line[len("listen:"):].rpartition("|")
                return addresses, port
        return None


class PostgresSetting(FactBase):
    """The running server's value of ``setting`` (``SHOW``); None when it is not running."""

    @staticmethod
    def default():
        return None

    def requires_command(self, setting: str, port: int) -> str:
        return "psql"

    def command(self, setting: str, port: int) -> str:
        query = f"SELECT 'setting:' || current_setting('{setting}')"
        return f"psql -XAt -p {port} -c {shlex.quote(query)} 2>/dev/null || true"

    def process(self, output):
        for line in output:
            if line.startswith("setting:"):
                return line[len("setting:"):]
        return None
