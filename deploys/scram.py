"""PostgreSQL's SCRAM-SHA-256 password verifiers (RFC 5803), so the password itself never
reaches the database server.

Standard library only: the image's entrypoint ships this module and runs it with the
system Python.
"""

import base64
import hashlib
import hmac
import os
import re

SCRAM_ITERATIONS = 4096
_VERIFIER = re.compile(r"^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _scram_keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    return stored_key, server_key


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """The verifier PostgreSQL stores for ``password`` (what ``ALTER ROLE ... PASSWORD`` accepts)."""
    salt = salt or os.urandom(16)
    stored_key, server_key = _scram_keys(password, salt, SCRAM_ITERATIONS)
    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def scram_matches(password: str, verifier: str | None) -> bool:
    """Whether a stored verifier was made from ``password``."""
    match = _VERIFIER.match(verifier or "")
    if not match:
        return False
    iterations, salt, stored_key, server_key = match.groups()
    expected = _scram_keys(password, base64.b64decode(salt), int(iterations))
    return hmac.compare_digest(_b64(expected[0]), stored_key) and hmac.compare_digest(
        _b64(expected[1]), server_key
    )
