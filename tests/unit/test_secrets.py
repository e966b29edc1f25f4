"""Secrets: where a password comes from, and the SCRAM verifier PostgreSQL gets instead."""

import base64
import hashlib
import hmac
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deploys import passwords, scram, secrets

pytestmark = pytest.mark.unit

# RFC 7677's SCRAM-SHA-256 exchange: user "user", password "pencil".
RFC_SALT = "W22ZaJ0SNY7soEsUEjb6gQ=="
RFC_NONCE = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_AUTH_MESSAGE = (f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={RFC_NONCE},s={RFC_SALT},i=4096,"
                    f"c=biws,r={RFC_NONCE}").encode()
RFC_CLIENT_PROOF = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
RFC_SERVER_SIGNATURE = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
PENCIL = ("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
          ":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=")


def test_verifier_authenticates_rfc7677_exchange():
    verifier = scram.scram_verifier("pencil", salt=base64.b64decode(RFC_SALT))
    assert verifier == PENCIL
    keys = verifier.split("$", 2)[2]
    stored_key, server_key = (base64.b64decode(key) for key in keys.split(":"))
    # The server proves itself with ServerKey, and checks the client's proof with StoredKey.
    assert base64.b64encode(hmac.new(server_key, RFC_AUTH_MESSAGE, "sha256").digest()).decode() == \
        RFC_SERVER_SIGNATURE
    signature = hmac.new(stored_key, RFC_AUTH_MESSAGE, "sha256").digest()
    client_key = bytes(a ^ b for a, b in zip(base64.b64decode(RFC_CLIENT_PROOF), signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key


def test_verifier_salt_is_random_and_16_bytes():
    first, second = scram.scram_verifier("pencil"), scram.scram_verifier("pencil")
    assert first != second
    for verifier in (first, second):
        assert verifier.startswith("SCRAM-SHA-256$4096:")
        assert len(base64.b64decode(verifier.split(":")[1].split("$")[0])) == 16
        assert scram.scram_matches("pencil", verifier)


@pytest.mark.parametrize(("password", "verifier", "matches"), [
    ("pencil", PENCIL, True),
    ("Pencil", PENCIL, False),
    ("pencil ", PENCIL, False),
    ("pencil", PENCIL.replace("$4096:", "$4095:"), False),  # the iterations stored are used
    ("pencil", PENCIL[:-3] + "eU=", False),  # server key differs
    ("pencil", PENCIL.replace("$WG5d8", "$WG5d9"), False),  # stored key differs
    ("pencil", None, False),
    ("pencil", "", False),
    ("pencil", "md5" + "0" * 32, False),
    ("pencil", "x" + PENCIL, False),
    ("pencil", "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$:", False),
])
def test_scram_matches(password, verifier, matches):
    assert scram.scram_matches(password, verifier) is matches


def test_scram_matches_other_iterations():
    verifier = "SCRAM-SHA-256$8:c2FsdHNhbHQ=$" + ":".join(
        base64.b64encode(key).decode() for key in scram._scram_keys("pw", b"saltsalt", 8))
    assert scram.scram_matches("pw", verifier)
    assert not scram.scram_matches("pw2", verifier)


# -- resolve --------------------------------------------------------------------------------
@pytest.fixture
def env(monkeypatch):
    monkeypatch.delenv("OMERO_TEST_SECRET", raising=False)
    return monkeypatch


def test_resolve_prefers_the_inventory(env, tmp_path):
    env.setenv("OMERO_TEST_SECRET", "from env")
    assert secrets.resolve("given", "OMERO_TEST_SECRET", str(tmp_path / "s"), "db password") == "given"
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("given", [None, ""])
def test_resolve_then_the_environment(env, tmp_path, given):
    env.setenv("OMERO_TEST_SECRET", "from env")
    assert secrets.resolve(given, "OMERO_TEST_SECRET", str(tmp_path / "s"), "db password") == "from env"
    assert not (tmp_path / "s").exists()


def test_resolve_generates_once_and_keeps(env, tmp_path):
    env.setenv("OMERO_TEST_SECRET", "")  # set but empty: not a password
    directory = tmp_path / "secrets" / "site"
    value = secrets.resolve(None, "OMERO_TEST_SECRET", str(directory), "omero/db password!")
    path = directory / "omero_db_password"
    assert path.read_text() == value + "\n"
    assert len(value) == 32 and value.isascii() and " " not in value
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert os.listdir(directory) == ["omero_db_password"]
    # The next run, and every other host, reads it back.
    assert secrets.resolve(None, "OMERO_TEST_SECRET", str(directory), "omero/db password!") == value
    assert secrets.resolve(None, "OMERO_TEST_SECRET", str(directory), "other") != value


@pytest.mark.parametrize(("key", "name"), [
    ("omero/db password!", "omero_db_password"),
    ("X-ray: root.pw", "X-ray_root.pw"),
    ("__a__", "a"),
])
def test_resolve_file_names(env, tmp_path, key, name):
    value = secrets.resolve(None, "OMERO_TEST_SECRET", str(tmp_path), key)
    assert os.listdir(tmp_path) == [name]
    assert (tmp_path / name).read_text() == value + "\n"


def test_resolve_reads_a_kept_secret_stripped(env, tmp_path):
    (tmp_path / "root.password").write_text("  kept \n")
    assert secrets.resolve(None, "OMERO_TEST_SECRET", str(tmp_path), "root.password") == "kept"


def test_resolve_expands_home(env, tmp_path):
    env.setenv("HOME", str(tmp_path))
    value = secrets.resolve(None, "OMERO_TEST_SECRET", "~/omero-secrets", "k")
    assert (tmp_path / "omero-secrets" / "k").read_text() == value + "\n"


def test_ssh_key_generated_once_and_kept_root_only(tmp_path):
    key = secrets.ssh_key(str(tmp_path / "secrets"), "@podman/aio-backup-ssh-key")
    assert key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    path = tmp_path / "secrets" / "podman_aio-backup-ssh-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secrets.ssh_key(str(tmp_path / "secrets"), "@podman/aio-backup-ssh-key") == key
    assert secrets.ssh_key(str(tmp_path / "secrets"), "other-backup-ssh-key") != key


def test_public_ssh_key_is_the_authorized_keys_form(tmp_path):
    key = secrets.ssh_key(str(tmp_path), "aio-backup-ssh-key")
    public = secrets.public_ssh_key(key, "omero-backup aio")
    kind, body, comment = public.split(" ", 2)
    assert (kind, comment) == ("ssh-ed25519", "omero-backup aio")
    # The wire form: a length-prefixed "ssh-ed25519", then the 32-byte public key.
    raw = base64.b64decode(body)
    assert raw[:15] == b"\x00\x00\x00\x0bssh-ed25519" and len(raw) == 4 + 11 + 4 + 32


@pytest.mark.parametrize("module, expression, printed", [
    (scram, "f['scram_verifier']('pw')[:14]", "SCRAM-SHA-256$"),
    (passwords, "f['weakness']('passwordpassword') is not None", "True"),
])
def test_image_modules_need_only_the_standard_library(module, expression, printed):
    """The image's entrypoint runs them with the system Python, which has no site packages."""
    ran = subprocess.run([sys.executable, "-I", "-S", "-c",
                          f"import runpy, sys; f = runpy.run_path(sys.argv[1]); print({expression})",
                          str(Path(module.__file__))], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == printed


WEAK = ["Sh0rt!", "passwordpassword", "123456789012", "abcabcabcabc", "aaaaaaaaaaaa", "Password1234",
        "qwertyuiopas", "zyxwvutsrqpo", "9876543210987", "omero-omero-omero", "changeme2024", "password!!!!",
        "Welcome12345", "12121212121212", "ABCDEFGHIJKLMN", "asdfghjkl;asdfghjkl;", "root1234root1234",
        "1qaz2wsx3edc4rfv"]
STRONG = ["kT8z_2mQv9LpXa", "S3cure-Omero-2026", "lab-omero-2026-x7", "correct horse battery", "Omero!2026!x",
          "tr0ub4dor&3-lab", "vX7#pQ2m@Lr9sT4w"]


@pytest.mark.parametrize("password", WEAK)
def test_weak_passwords_are_named_weak(password):
    reason = passwords.weakness(password)
    assert reason and password not in reason


@pytest.mark.parametrize("password", STRONG)
def test_strong_passwords_pass(password):
    assert passwords.weakness(password) is None
