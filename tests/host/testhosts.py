"""Fresh Debian 12 test hosts: debootstrapped roots entered with pyinfra's @chroot connector.

A pristine root is made once with debootstrap and cached as a tarball; each test host is
a copy of it with /proc and /dev mounted, its own loopback address, and the machine's
extra CA certificates handed to the deploy (as a lab behind a TLS-inspecting proxy
would). Downloaded .debs and pip wheels are kept in cache directories mounted into the
hosts. Teardown stops every process running inside the root, unmounts and
deletes it.
"""

import fcntl
import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import testinfra

ROOT = Path(__file__).resolve().parents[2]
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
CACHE = Path(os.environ.get("OMERO_TEST_CACHE", "~/.cache/omero-pyinfra")).expanduser()
HOSTS = Path(os.environ.get("OMERO_TEST_HOSTS", "/var/tmp/omero-pyinfra-hosts"))
MIRROR = os.environ.get("OMERO_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
EXTRA_CA_CERTIFICATES = sorted(glob.glob("/usr/local/share/ca-certificates/*.crt"))
# Kept across runs: (directory in the cache, mount point in the host). apt locks its
# archive directory, so each host name has its own; pip's cache is safe to share.
CACHES = (("apt-archives/{name}", "var/cache/apt/archives"), ("pip", "root/.cache/pip"))
CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": os.environ.get("HOME", "/root"),
    "LANG": "C.UTF-8",
}


def pristine_tarball() -> Path:
    """A minimal Debian 12 root as a tarball, made with debootstrap on first use."""
    tarball = CACHE / "debian12-minbase.tar"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "debian12-minbase.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not tarball.exists():
            work = HOSTS / "debootstrap"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            # iproute2 is for testinfra's socket checks; the deploy installs everything else.
            subprocess.run(["debootstrap", "--variant=minbase", "--include=iproute2", "bookworm",
                            str(work), MIRROR], check=True, capture_output=True)
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(work), "-cf", str(partial), "."], check=True)
            partial.rename(tarball)
            shutil.rmtree(work)
    return tarball


def cached_icepy_wheel() -> Path | None:
    wheels = sorted((CACHE / "wheels").glob("zeroc_ice-3.6.5-cp311-*.whl"))
    return wheels[0] if wheels else None


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class ChrootHost:
    name: str
    address: str  # a loopback address of its own (hosts share the network namespace)
    root: Path = field(init=False)
    mounts: list[Path] = field(default_factory=list)
    # Set by deployed(): the inventory it was deployed with, and testinfra's view of it.
    inventory: Path | None = field(init=False, default=None)
    testinfra: object = field(init=False, default=None)

    def __post_init__(self):
        self.root = HOSTS / self.name

    @property
    def connector(self) -> str:
        return f"@chroot{self.root}"

    def create(self) -> "ChrootHost":
        self.destroy()  # what a crashed earlier run left behind
        self.root.mkdir(parents=True)
        subprocess.run(["tar", "-C", str(self.root), "-xf", str(pristine_tarball())], check=True)
        shutil.copy("/etc/resolv.conf", self.root / "etc/resolv.conf")
        for source, target in (("/proc", "proc"), ("/dev", "dev"), ("/dev/pts", "dev/pts")):
            self._mount(Path(source), target)
        for cache_dir, target in CACHES:
            source = CACHE / cache_dir.format(name=self.name)
            source.mkdir(parents=True, exist_ok=True)
            self._mount(source, target)
        return self

    def _mount(self, source: Path, target: str) -> None:
        mount_point = self.root / target
        mount_point.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "--bind", str(source), str(mount_point)], check=True)
        self.mounts.append(mount_point)

    def processes(self) -> list[int]:
        """PIDs of the processes running inside this root."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "root") == str(self.root):
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids

    def stop_processes(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.processes():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.time() + 15
            while self.processes() and time.time() < deadline:
                time.sleep(0.2)
            if not self.processes():
                return
        raise RuntimeError(f"processes left in {self.root}: {self.processes()}")

    def destroy(self) -> None:
        if not self.root.exists():
            return
        self.stop_processes()
        # Mounts made by this object, and any a crashed run left (deepest first).
        with open("/proc/mounts") as mounts:
            left = [line.split()[1] for line in mounts if line.split()[1].startswith(f"{self.root}/")]
        for mount_point in sorted(set(left) | {str(m) for m in self.mounts}, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount_point], capture_output=True)
        self.mounts.clear()
        shutil.rmtree(self.root)

    def run(self, command: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["chroot", str(self.root), "sh", "-c", command], check=check,
                              capture_output=True, text=True, env=CLEAN_ENV)

    def keep_built_wheel(self) -> None:
        """Cache the IcePy wheel a deploy built here, so later runs never rebuild it."""
        if cached_icepy_wheel() is None:
            built = sorted((self.root / "opt/omero/wheels").glob("zeroc_ice-3.6.5-*.whl"))
            if built:
                (CACHE / "wheels").mkdir(parents=True, exist_ok=True)
                shutil.copy(built[0], CACHE / "wheels" / built[0].name)


def host_data(host: ChrootHost, secrets_dir: Path, **overrides) -> dict:
    """Options for a test host: its own loopback address, the lab's CAs, the wheel cache."""
    data = {
        "omero_address": host.address,
        "omero_nginx_listen": f"{host.address}:80",
        "omero_web_bind": f"{host.address}:4080",
        "omero_web_workers": 2,
        "omero_secrets_dir": str(secrets_dir),
        "omero_extra_ca_certificates": EXTRA_CA_CERTIFICATES,
    }
    wheel = cached_icepy_wheel()
    if wheel:
        data.update(omero_icepy_wheel=str(wheel), omero_icepy_wheel_sha256=sha256_of(wheel))
    data.update(overrides)
    return data


def write_inventory(path: Path, groups: dict[str, list[ChrootHost]], data: dict[str, dict]) -> Path:
    """An inventory file in the form sysadmins write: groups of (host, data) tuples."""
    lines = ['"""Generated by the test harness."""']
    for group, hosts in groups.items():
        entries = ", ".join(repr((host.connector, data[host.name])) for host in hosts)
        lines.append(f"{group} = [{entries}]")
    path.write_text("\n".join(lines) + "\n")
    return path


def pyinfra(inventory: Path, *args: str, deploy_file: str = "deploy.py",
            timeout: int = 1800) -> subprocess.CompletedProcess:
    """Run the deploy; with no ``args``, for real (``-y``: no prompt)."""
    return subprocess.run([PYINFRA, *(args or ["-y"]), str(inventory), deploy_file], cwd=ROOT,
                          env=CLEAN_ENV, capture_output=True, text=True, timeout=timeout)


def deploy(inventory: Path, *hosts: ChrootHost) -> subprocess.CompletedProcess:
    result = pyinfra(inventory)
    # Kept as an artifact: the whole deploy output, for when it failed.
    log = ROOT / "artifacts" / f"deploy-{inventory.stem}.log"
    log.parent.mkdir(exist_ok=True)
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        errors = [line for line in (result.stdout + result.stderr).splitlines()
                  if "rror" in line and "Operation" not in line]
        raise AssertionError(f"deploy failed (whole output in {log}):\n" + "\n".join(errors[-40:]))
    for host in hosts:
        host.keep_built_wheel()
    return result


@contextmanager
def deployed(host: ChrootHost, groups: list[str], directory: Path, secrets_dir: Path,
             **overrides) -> Iterator[ChrootHost]:
    """``host`` made fresh, in ``groups``, deployed; destroyed afterwards."""
    host.create()
    try:
        host.inventory = write_inventory(directory / f"{host.name}.py",
                                         {group: [host] for group in groups},
                                         {host.name: host_data(host, secrets_dir, **overrides)})
        deploy(host.inventory, host)
        host.testinfra = testinfra.get_host(str(host.root), connection="chroot")
        yield host
    finally:
        host.destroy()


def hosts_with_changes(inventory: Path, deploy_file: str = "deploy.py") -> dict[str, list[str]]:
    """What a second run would change: {operation name: hosts} from `pyinfra --dry --json`."""
    result = pyinfra(inventory, "--dry", "--json", deploy_file=deploy_file)
    assert result.returncode == 0, result.stderr[-3000:]
    plan = json.loads(result.stdout)["plan"]
    return {op["name"]: op["hosts_with_change"] + op["hosts_with_conditional_change"]
            for op in plan if op["hosts_with_change"] or op["hosts_with_conditional_change"]}
