"""Grammars of the option values: each takes a value from the inventory and returns it parsed
(endpoints split into address and port, OMERO settings as the text written) or raises ``Bad``
with the value's problem; ``options`` names each option's grammar. Paths, accounts and other
names on the hosts are in ``names``."""

import ipaddress
import json
import math
import re
import string
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .values import Endpoint, ServerNames
from .webapps import APPS, WebApp

SHA256 = re.compile(r"[0-9a-f]{64}")
_RELEASE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
SERVER_ZIP = re.compile(r"OMERO\.server-([0-9]+\.[0-9]+\.[0-9]+)-ice36\.zip")
ICEPY_WHEEL = re.compile(r"zeroc_ice-3\.6\.5-[A-Za-z0-9._+-]+\.whl")
ICE_TARBALL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\.(tar\.gz|tgz)")

ALNUM = string.ascii_letters + string.digits
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

# pg_hba.conf's words for sets of addresses: never an address of ours.
_PG_HBA_ADDRESS_KEYWORDS = frozenset({"all", "samehost", "samenet"})
# Proxy and index URLs reach apt.conf, dnf.conf, pip.conf and (the proxy) a curl command
# line as they are: no character any of those would read.
_URL_CHARS = ALNUM + "._~:/@%+-[]"
# Artifact URLs are only ever quoted: RFC 3986's characters but quotes.
ARTIFACT_URL_CHARS = ALNUM + "-._~:/?#[]@!$&()*+,;=%"
_CONFIG_KEY = re.compile(r"omero\.[A-Za-z0-9_.]+")
# Backup schedules: daily `HH:MM`, weekly `Mon HH:MM`, or an interval `every 30m` / `every 6h`.
_SCHEDULE = re.compile(r"(?:(Mon|Tue|Wed|Thu|Fri|Sat|Sun) )?([01][0-9]|2[0-3]):([0-5][0-9])"
                       r"|every ([1-9][0-9]{0,3})([mh])")
_KEEP = ("daily", "weekly", "monthly")
# A systemd size for a user's memory: mebibytes or gibibytes.
_MEMORY = re.compile(r"([1-9][0-9]{0,6})([MmGg])")
_MEMORY_MIB = (256, 1024 * 1024)  # JupyterLab needs about 200M to start; 1024G at most
# configurable-http-proxy's Node.js requirement (its package.json `engines`), from the
# release on: 4.x declares Node.js 10, 5.0 and 5.1 need 18, 5.2 and later 20.
_PROXY_NODE = (((5, 2, 0), 20), ((5, 0, 0), 18), ((0, 0, 0), 10))


class Bad(ValueError):
    """A value's problem; the caller names the option and host and adds a good value."""


Grammar = TypeVar("Grammar", bound=Callable[[Any], Any])


def accepts(text: str) -> Callable[[Grammar], Grammar]:
    """Marks a grammar with what it accepts, in Markdown (docs/malformed-input.md)."""
    def mark(grammar: Grammar) -> Grammar:
        grammar.accepts = text
        return grammar
    return mark


@accepts("a string")
def parse_text(value: Any) -> str:
    if not isinstance(value, str):
        raise Bad(f"must be a string, not {type(value).__name__}")  # no value: it may be a secret
    return value


def optional(grammar: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return accepts(grammar.accepts)(lambda value: None if value is None else grammar(value))


def allowed(text: str, chars: str, what: str) -> None:
    bad = next((char for char in text if char not in chars), None)
    if bad is not None:
        raise Bad(f"holds {bad!r}; {what}")


def one_of(*choices: Any) -> Callable[[Any], Any]:
    def grammar(value: Any) -> Any:
        # By type too: True == 1 and 17.0 == 17 in Python.
        if not any(type(value) is type(choice) and value == choice for choice in choices):
            names = ", ".join(str(choice) for choice in choices[:-1])
            raise Bad(f"must be {names} or {choices[-1]}, not {value!r}")
        return value
    shown = [f"`{choice}`" for choice in choices]
    kind = {bool: " (not `'yes'`, `'False'`, `1` or `None`)", int: " (whole numbers, not `'17'`)"}
    return accepts(f"{', '.join(shown[:-1])} or {shown[-1]}{kind.get(type(choices[0]), '')}")(grammar)


@accepts("a TCP port number: a whole number 1-65535 (`True` and `'5432'` are not)")
def parse_port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise Bad(f"must be a TCP port number (a whole number 1-65535), not {value!r}")
    return value


def bounded(low: int, high: int) -> Callable[[Any], int]:
    def grammar(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise Bad(f"must be a whole number from {low} to {high}, not {value!r}")
        return value
    return accepts(f"a whole number from {low} to {high}")(grammar)


@accepts("a whole number of percent, 0 to 100")
def parse_percent(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise Bad(f"must be a whole number of percent, 0 to 100, not {value!r}")
    return value


@accepts("a release `N.N.N`")
def parse_release(value: Any) -> str:
    if not isinstance(value, str) or not _RELEASE.fullmatch(value):
        raise Bad(f"must be a release like 5.23.0, not {value!r}")
    return value


def ip_literal(text: str, version: int | None = None) -> str | None:
    """``text`` as an IP address literal in its normal form, or None."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return str(address) if version in (None, address.version) else None


def is_host_name(text: str) -> bool:
    """RFC 1123: dot-separated labels of letters, digits and inner '-'; a last label of
    digits only would read as an IPv4 address."""
    labels = text.split(".")
    return (len(text) <= 253 and all(_LABEL.fullmatch(label) for label in labels)
            and not labels[-1].isdigit())


@accepts("an IPv4 or IPv6 literal (no brackets) or an RFC 1123 host name, not one of `pg_hba.conf`'s"
         ' words for sets of hosts (`all`, `samehost`, `samenet`)')
def parse_address(value: Any) -> str:
    """A host name or an IP address (IPv6 without brackets)."""
    text = parse_text(value)
    if text.startswith("["):
        raise Bad(f"{text!r}: write an IPv6 address without brackets here, like ::1")
    allowed(text, ALNUM + ".-:", "an address holds only letters, digits, '.', '-' "
                                 "(and ':' in an IPv6 address)")
    address = ip_literal(text)
    if address is not None:
        return address
    if text.lower() in _PG_HBA_ADDRESS_KEYWORDS:
        raise Bad(f"{text!r} is a pg_hba.conf keyword (it would admit more than one host to "
                  "PostgreSQL); give the host's name or address")
    if not is_host_name(text):
        raise Bad(f"{text!r} is neither an IP address nor a host name (RFC 1123: labels of "
                  "letters, digits and inner '-', separated by dots)")
    return text


def _endpoint(value: Any, need_address: bool) -> Endpoint:
    """``address:port`` (``[address:]port`` unless ``need_address``); the address None for
    nginx's port-only form (every address)."""
    form = "address:port" if need_address else "[address:]port"
    if not need_address and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # nginx's port-only form, given as a number
    text = parse_text(value)
    allowed(text, ALNUM + ".-:[]", f"an endpoint ({form}) holds only letters, digits, '.', "
                                   "'-', ':' and brackets around an IPv6 address")
    address: str | None
    if text.startswith("["):
        inside, bracketed, port = text[1:].partition("]:")
        address = ip_literal(inside, 6)
        if not bracketed or address is None:
            raise Bad(f"{text!r} is not [IPv6 address]:port")
    elif text.count(":") > 1:
        raise Bad(f"{text!r}: put an IPv6 address in brackets, like [::1]:4080")
    elif ":" in text:
        given, _, port = text.partition(":")
        address = parse_address(given)
    elif need_address:
        raise Bad(f"{text!r} has no address: must be address:port")
    else:
        address, port = None, text
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
        raise Bad(f"{port!r} is not a TCP port number (1-65535)")
    return Endpoint(address, int(port))


@accepts('`address:port`: the address an IPv4 literal, a host name, or an IPv6 literal in brackets '
         '(`[::1]:4080`); the port 1-65535')
def parse_endpoint(value: Any) -> Endpoint:
    """``address:port``: where gunicorn listens."""
    return _endpoint(value, need_address=True)


@accepts('`[address:]port` (a number alone too): the address an IPv4 literal, a host name, or an '
         'IPv6 literal in brackets (`[::]:80`); the port 1-65535')
def parse_listen(value: Any) -> Endpoint:
    """nginx's ``listen``: ``[address:]port``, a number alone too."""
    return _endpoint(value, need_address=False)


@accepts("names separated by spaces: host names, `*.` and a host name, IPv4 literals, `_`")
def parse_server_names(value: Any) -> ServerNames:
    """nginx ``server_name``: names separated by spaces; ``_`` and ``*.name`` allowed."""
    text = parse_text(value)
    allowed(text, ALNUM + ".-_* ", "server names hold only letters, digits, '.', '-', "
                                   "a leading '*.' or '_', separated by spaces")
    names = text.split()
    if not names:
        raise Bad("is empty; '_' matches any name")
    for name in names:
        base = name.removeprefix("*.")
        if name != "_" and not is_host_name(base) and ip_literal(base, 4) is None:
            raise Bad(f"{name!r} is not a host name, *.host name, IPv4 address or '_'")
    return ServerNames(tuple(names))


@accepts("one host name (labels of `A-Z a-z 0-9` and inner `-`; no address, no `*.`, no `_`)")
def parse_hub_name(value: Any) -> str:
    """The hub's own site name: one host name (no wildcard, no address), lower-case."""
    text = parse_text(value)
    if not is_host_name(text):
        raise Bad(f"{text!r} is not a host name (the hub's own: dot-separated labels of letters, "
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


@accepts('an `http(s)://` URL with a host, of `A-Z a-z 0-9 % + - . / : @ [ ] _ ~` only (credentials '
         '`user:pass@` allowed, percent-encoded)')
def parse_url(value: Any, chars: str = _URL_CHARS) -> str:
    text = parse_text(value)
    shown = re.sub(r"//[^/@]*@", "//***@", text)  # no credentials in the message
    allowed(text, chars, "a URL here holds only letters, digits and "
                         f"{' '.join(sorted(set(chars) - set(ALNUM)))}; "
                         "percent-encode anything else (a password's too)")
    try:
        parts = urlsplit(text)
        host, _ = parts.hostname, parts.port
    except ValueError as error:
        raise Bad(f"{shown} is not a URL ({error})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise Bad(f"must be an http(s) URL with a host, not {shown!r}")
    parse_address(host)
    return text


@accepts("an nginx size above 0: up to six digits, then `k`, `m`, `g` or nothing (`200m`, `1g`)")
def parse_nginx_size(value: Any) -> str:
    text = parse_text(value)
    if not re.fullmatch(r"[1-9][0-9]{0,5}[kKmMgG]?", text):
        raise Bad(f"{text!r} is not an nginx size above 0, like 200m or 2g (0 would mean unlimited)")
    return text.lower()


@accepts("a size `<N>M` or `<N>G` from 256M to 1024G")
def parse_memory(value: Any) -> str:
    text = parse_text(value)
    match = _MEMORY.fullmatch(text)
    low, high = _MEMORY_MIB
    if match is None or not low <= int(match[1]) * (1024 if match[2] in "Gg" else 1) <= high:
        raise Bad(f"{text!r} is not a memory size from 256M to 1024G (a whole number, then M or G)")
    return match[1] + match[2].upper()


@accepts("a number of CPUs from 0.1 to 256 (`1`, `0.5`)")
def parse_cpus(value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.1 <= value <= 256:
        raise Bad(f"must be a number of CPUs from 0.1 to 256, like 1 or 0.5, not {value!r}")
    return value


def proxy_node_major(version: str) -> int:
    """The Node.js major version configurable-http-proxy ``version`` needs."""
    release = tuple(int(part) for part in version.split("."))
    return next(node for since, node in _PROXY_NODE if release >= since)


@accepts('`HH:MM` (daily), `Mon HH:MM` (weekly, `Mon`..`Sun`), `every <N>m` or `every <N>h` (N '
         '1-9999)')
def parse_schedule(value: Any) -> str:
    text = parse_text(value)
    if not _SCHEDULE.fullmatch(text):
        raise Bad(f"{text!r} is not a schedule: HH:MM (daily), Mon HH:MM (weekly, days Mon..Sun), "
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


@accepts("a mapping of `daily`, `weekly`, `monthly` to whole numbers 0 or more, not all 0")
def parse_keep(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or set(value) - set(_KEEP):
        raise Bad(f"must be a mapping with keys among {', '.join(_KEEP)}, not {value!r}")
    for key, count in value.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise Bad(f"{key} must be a whole number 0 or more, not {count!r}")
    if not any(value.values()):
        raise Bad("keeps no backup at all; give at least one count above 0")
    return {key: value.get(key, 0) for key in _KEEP}


def _config_value(key: str, value: Any) -> None:
    """A JSON-able value without control characters, at any depth."""
    if isinstance(value, str):
        bad = next((char for char in value if unicodedata.category(char) in ("Cc", "Zl", "Zp")),
                   None)
        if bad is not None:
            raise Bad(f"the value of {key} holds the control character {bad!r} "
                      "(line breaks, tabs and the like cannot be written)")
    elif isinstance(value, float) and not math.isfinite(value):
        raise Bad(f"the value of {key} holds {value}, which JSON has no form for")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _config_value(key, item)
    elif isinstance(value, dict):
        for inner_key, item in value.items():
            if not isinstance(inner_key, str):
                raise Bad(f"the value of {key} holds a mapping key {inner_key!r}; JSON keys "
                          "are strings")
            _config_value(key, inner_key)
            _config_value(key, item)
    elif not isinstance(value, (bool, int, float)):
        raise Bad(f"the value of {key} holds {value!r}, which is not a string, number, "
                  "boolean, list or mapping (leave a key out to keep OMERO's default)")


@accepts('a mapping of keys `omero.[A-Za-z0-9_.]+` to strings, numbers, booleans, lists and mappings'
         ' of those (JSON lists such as `omero.web.ui.top_links` pass), with no control character or'
         ' line break at any depth and no single quote (see below)')
def parse_config(value: Any) -> dict[str, str]:
    """OMERO settings, each value as the text written for it (JSON unless a string)."""
    if not isinstance(value, dict):
        raise Bad("must be a mapping of OMERO setting names (omero.*) to values, "
                  f"not a {type(value).__name__}")
    parsed = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _CONFIG_KEY.fullmatch(key):
            raise Bad(f"{key!r} is not an OMERO setting name (omero. then letters, digits, "
                      "'_' and '.')")
        _config_value(key, item)
        written = item if isinstance(item, str) else json.dumps(item)
        if "'" in written:
            raise Bad(f"the value of {key} holds a single quote, which the config file's "
                      "single-quoted `config set` lines cannot carry")
        parsed[key] = written
    return parsed


@accepts('a list of apps this deploy knows (`omero-figure`, `omero-iviewer`, `omero-parade`, '
         '`omero-mapr`), each once, as `name` or `name==N.N.N`')
def parse_web_apps(value: Any) -> tuple[WebApp, ...]:
    """``name`` or ``name==version`` of apps this deploy knows, each once."""
    if not isinstance(value, (list, tuple)):
        raise Bad(f"must be a list of app names, not a {type(value).__name__}")
    apps: dict[str, WebApp] = {}
    for item in value:
        text = parse_text(item)
        name, pinned, version = text.partition("==")
        if name not in APPS:
            raise Bad(f"{name!r} is not an app this deploy knows; known: {', '.join(APPS)}")
        if name in apps:
            raise Bad(f"{name} is listed twice")
        apps[name] = replace(APPS[name], version=parse_release(version)) if pinned else APPS[name]
    return tuple(apps.values())
