"""The ACME deploy hook (templates/nginx/omero-tls-renewed.sh.j2) run for real: a renewed
certificate and its key installed with the right modes whatever the caller's umask, and a
key that is not the certificate's refused with nothing changed."""

import os
import stat
import subprocess
from pathlib import Path

import pytest
from pyinfra.api.util import get_template

from tests.certificates import CertificateAuthority

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hook(tmp_path):
    tls_dir, bin_dir = tmp_path / "tls", tmp_path / "bin"
    tls_dir.mkdir(mode=0o700)
    bin_dir.mkdir()
    # nginx's check, as the hook calls it; the reload is the deploy's command, here a record.
    (bin_dir / "nginx").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "nginx").chmod(0o755)
    script = tmp_path / "omero-tls-renewed"
    script.write_text(get_template(str(ROOT / "templates/nginx/omero-tls-renewed.sh.j2")).render(
        tls_dir=str(tls_dir), tls_renewed_hook="/usr/local/sbin/omero-tls-renewed",
        reloaded_stamp=str(tmp_path / "nginx-reloaded.done"), reload=f"touch {tmp_path}/reloaded"))
    return script, tls_dir, bin_dir


def run_hook(script, bin_dir, *args):
    # A caller's umask that would leave the key open to everyone.
    return subprocess.run(["sh", "-c", 'umask 000 && exec sh "$@"', "sh", str(script), *map(str, args)],
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, capture_output=True, text=True)


def test_renewed_certificate_installed_closed(hook, tmp_path):
    script, tls_dir, bin_dir = hook
    chain, key, _ = CertificateAuthority(tmp_path).issue("site", ["omero.test"])
    key.chmod(0o644)  # as a key copied by hand may be: the installed one is closed all the same
    result = run_hook(script, bin_dir, chain, key)
    assert result.returncode == 0, result.stderr
    assert (tls_dir / "site.key").read_bytes() == key.read_bytes()
    assert stat.S_IMODE((tls_dir / "site.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tls_dir / "site.crt").stat().st_mode) == 0o644
    assert (tmp_path / "reloaded").exists() and (tmp_path / "nginx-reloaded.done").exists()


def test_key_of_another_certificate_changes_nothing(hook, tmp_path):
    script, tls_dir, bin_dir = hook
    authority = CertificateAuthority(tmp_path)
    chain, _, _ = authority.issue("site", ["omero.test"])
    _, other_key, _ = authority.issue("other", ["omero.test"])
    result = run_hook(script, bin_dir, chain, other_key)
    assert result.returncode == 1 and "is not the key of" in result.stderr
    assert not list(tls_dir.iterdir()) and not (tmp_path / "reloaded").exists()
