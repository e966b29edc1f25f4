"""The site's self-signed certificate: made on the host when missing, mismatched, near
expiry or for other names (idempotent as operations.py's)."""

import ipaddress
from datetime import datetime, timedelta, timezone

from pyinfra import host
from pyinfra.api import QuoteString, StringCommand, operation

from facts.omero import TlsCertificate

from .chained import chaining


def certificate_due(current: dict | None, names: list[str], renew_days: int, now: datetime,
                    renewed_elsewhere: bool = False) -> str | None:
    """Why a self-signed certificate must be made (anew), or None. ``renewed_elsewhere``: an
    ACME client keeps it; only a missing or broken pair is replaced."""
    if current is None:
        return "there is none"
    if not current["key_matches"]:
        return "its key does not match"
    if renewed_elsewhere:
        return None
    if current["not_after"] - now < timedelta(days=renew_days):
        return f"it expires on {current['not_after']:%Y-%m-%d}"
    if current["names"] != sorted(names):
        return f"it is for {', '.join(current['names']) or 'no name'}"
    return None


def _subject_alt_names(names: list[str]) -> str:
    def entry(name: str) -> str:
        try:
            return f"IP:{ipaddress.ip_address(name)}"
        except ValueError:
            return f"DNS:{name}"
    return ",".join(entry(name) for name in names)


@operation()
@chaining
def self_signed_certificate(certificate: str, key: str, names: list[str], renew_days: int, days: int,
                            renewed_elsewhere: bool = False):
    """A self-signed certificate for ``names`` (host names, addresses; the first is its
    subject) and its key, made on the host (the key never leaves it) when missing,
    mismatched, within ``renew_days`` of expiry or for other names."""
    current = host.get_fact(TlsCertificate, certificate=certificate, key=key)
    reason = certificate_due(current, names, renew_days, datetime.now(timezone.utc), renewed_elsewhere)
    if reason is None:
        host.noop(f"{certificate} is valid until {current['not_after']:%Y-%m-%d}")
        return
    new_key, new_certificate = f"{key}.new", f"{certificate}.new"
    yield StringCommand(
        "(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes",
        "-days", str(days), "-subj", QuoteString(f"/CN={(names or ['omero'])[0]}"),
        "-addext", QuoteString(f"subjectAltName={_subject_alt_names(names)}"),
        "-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth",
        "-keyout", QuoteString(new_key), "-out", QuoteString(new_certificate), "2>/dev/null)",
    )
    # Renamed into place key first: a run cut short in between leaves a mismatch, which
    # the next run sees (key_matches) and repairs.
    for path, mode in ((new_key, "600"), (new_certificate, "644")):
        yield StringCommand("chown", "root:root", QuoteString(path))
        yield StringCommand("chmod", mode, QuoteString(path))
    yield StringCommand("mv", "-f", QuoteString(new_key), QuoteString(key))
    yield StringCommand("mv", "-f", QuoteString(new_certificate), QuoteString(certificate))
