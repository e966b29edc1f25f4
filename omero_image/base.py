"""Debian roots made with debootstrap and imported into podman: the base of the OMERO image
and of the test hosts. No registry is needed; each root is made once and kept as a tarball
in the cache, keyed by what it holds."""

import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE = Path(os.environ.get("OMERO_TEST_CACHE", "~/.cache/omero-pyinfra")).expanduser()
WORK = Path(os.environ.get("OMERO_TEST_HOSTS", "/var/tmp/omero-pyinfra-hosts"))
MIRROR = os.environ.get("OMERO_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")


def run(*command: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """``command``'s result; when ``check``, a failure raises with what it printed."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n"
                           f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


@contextmanager
def locked(name: str) -> Iterator[None]:
    """One process at a time for ``name`` (across test runs and builds)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def digest(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def debootstrap(suite: str, packages: list[str], into: Path) -> None:
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    run("debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, str(into),
        MIRROR)
    shutil.rmtree(into / "var/cache/apt/archives", ignore_errors=True)
    (into / "var/cache/apt/archives/partial").mkdir(parents=True)


def ensure_image(tag: str, suite: str, packages: list[str], cmd: str, env: dict,
                 customise: Callable[[Path], None] | None = None) -> str:
    """The podman image ``tag`` (``repository:key``): a debootstrapped ``suite`` root with
    ``packages``, ``customise``d, imported with ``cmd``; made once, other keys removed."""
    repository, _ = tag.rsplit(":", 1)
    name = repository.split("/")[-1]

    def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run("podman", *args, check=check, env=env)

    with locked(f"image-{suite}"):
        if podman("image", "exists", tag, check=False).returncode != 0:
            tarball = CACHE / f"{name}-{tag.rsplit(':', 1)[1]}.tar"
            if not tarball.exists():
                work = WORK / f"debootstrap-{suite}"
                debootstrap(suite, packages, work)
                if customise:
                    customise(work)
                partial = tarball.with_suffix(".partial")
                run("tar", "-C", str(work), "-cf", str(partial), ".")
                partial.rename(tarball)
                shutil.rmtree(work)
            # What earlier versions left: other keys of this image.
            for stale in CACHE.glob(f"{name}-*.tar"):
                if stale != tarball:
                    stale.unlink()
            old_tags = podman("images", "--format", "{{.Repository}}:{{.Tag}}", repository).stdout.split()
            if old_tags:
                podman("rmi", "-f", *old_tags, check=False)
            podman("import", "--change", f"CMD={cmd}", str(tarball), tag)
    return tag
