"""Test hosts that look like a lab's machines, all made from debootstrapped Debian roots.

- ``SystemdHost``: a podman container with systemd as PID 1 (as OME's molecule tests
  run), on a network the tests create, with sshd and a sudo user ``admin``; pyinfra
  reaches it over SSH through a port published on 127.0.0.1.
- ``ContainerHost``: a plain podman container (no systemd, so the deploy picks
  supervisord), reached with pyinfra's ``@podman`` or ``@docker`` connector.
- ``VirtualMachine``: a Debian 12 VM under qemu (software emulation), booted from its
  own kernel, reached over SSH as ``admin`` through a port forwarded on 127.0.0.1.

Roots are made once with debootstrap and kept as tarballs (and a qcow2 disk) in the
cache, so later runs start hosts in seconds. Downloaded .debs and pip wheels are kept in
cache directories mounted into the containers. Every host is torn down after its tests:
containers removed, the VM's qemu stopped by PID.
"""

import glob
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import testinfra

from omero_image.base import CACHE, WORK, debootstrap, digest, ensure_image, locked, run
from omero_image.build import BASE_PACKAGES, BASE_SUITE

ROOT = Path(__file__).resolve().parents[2]
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
EXTRA_CA_CERTIFICATES = sorted(glob.glob("/usr/local/share/ca-certificates/*.crt"))
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": str(Path(__file__).with_name("containers.conf"))}
NETWORK, SUBNET = "omero-test", "10.89.64"
# OMERO_TEST_KEEP=1 leaves the deployed fixtures' hosts running after a test, to look at.
KEEP = bool(os.environ.get("OMERO_TEST_KEEP"))
PREFIX = "omero-test-"  # of every container name, so a crashed run's leftovers are found
# The test run's id: the PID of scripts/test (its two pytest runs share it) or of pytest.
RUN_LABEL, RUN_ID = "omero-test-run", os.environ.get("OMERO_TEST_RUN", str(os.getpid()))
ADMIN = "admin"
CLEAN_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": os.environ.get("HOME", "/root"),
    "LANG": "C.UTF-8",
    "CONTAINERS_CONF": PODMAN_ENV["CONTAINERS_CONF"],  # pyinfra's @podman runs podman
}

# What each kind of root holds beyond debootstrap's minbase. iproute2: testinfra's socket
# checks; the deploy installs everything else.
_PLAIN = ["iproute2"]
_SYSTEMD = _PLAIN + ["systemd", "systemd-sysv", "dbus", "openssh-server", "sudo"]
_VM = _SYSTEMD + ["linux-image-amd64", "initramfs-tools", "udev", "e2fsprogs"]


def podman(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return run("podman", *args, check=check, env=PODMAN_ENV, **kwargs)


def ssh_key() -> Path:
    """The harness's SSH key (for ``admin`` on every host), made once."""
    key = CACHE / "ssh" / "id_ed25519"
    with locked("ssh"):
        if not key.exists():
            key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "omero-pyinfra-tests", "-f", str(key))
    return key


# A host key is made at each host's first boot, so no two test hosts share one; Ed25519
# only: RSA key generation takes minutes under software emulation. ($$: for the shell,
# not for systemd's own expansion.)
_SSH_HOST_KEYS = """[Service]
ExecStartPre=
ExecStartPre=/bin/sh -c 'k=/etc/ssh/ssh_host_ed25519_key; test -e $$k || ssh-keygen -q -t ed25519 -N "" -f $$k'
ExecStartPre=/usr/sbin/sshd -t
"""
_SSHD_CONFIG = "HostKey /etc/ssh/ssh_host_ed25519_key\n"


def _add_admin(root: Path) -> None:
    """sshd with host keys of its own, and the non-root administrator sysadmins log in as:
    sudo without a password, the harness's key."""
    for host_key in (root / "etc/ssh").glob("ssh_host_*"):
        host_key.unlink()
    drop_in = root / "etc/systemd/system/ssh.service.d/host-keys.conf"
    drop_in.parent.mkdir(parents=True)
    drop_in.write_text(_SSH_HOST_KEYS)
    (root / "etc/ssh/sshd_config.d/host-key.conf").write_text(_SSHD_CONFIG)
    run("chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash", "--groups", "sudo", ADMIN)
    (root / "etc/sudoers.d/admin").write_text(f"{ADMIN} ALL=(ALL) NOPASSWD: ALL\n")
    (root / "etc/sudoers.d/admin").chmod(0o440)
    ssh_dir = root / "home" / ADMIN / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    (ssh_dir / "authorized_keys").write_text(ssh_key().with_suffix(".pub").read_text())
    run("chroot", str(root), "chown", "-R", f"{ADMIN}:{ADMIN}", f"/home/{ADMIN}/.ssh")


@dataclass(frozen=True)
class Image:
    """A podman image made from a debootstrapped root: ``systemd`` or plain."""

    suite: str  # bookworm (Debian 12), trixie (Debian 13)
    systemd: bool

    @property
    def packages(self) -> list[str]:
        return _SYSTEMD if self.systemd else _PLAIN

    @property
    def tag(self) -> str:
        kind = "systemd" if self.systemd else "plain"
        # The tag changes with what the root holds (and the key baked into it).
        key = ssh_key().with_suffix(".pub").read_text() if self.systemd else ""
        return f"localhost/omero-test-{self.suite}-{kind}:{digest(self.packages, key, _SSH_HOST_KEYS, _SSHD_CONFIG)}"

    def ensure(self) -> str:
        return ensure_image(self.tag, self.suite, self.packages, "/sbin/init" if self.systemd else "/bin/sh",
                            PODMAN_ENV, _add_admin if self.systemd else None)


DEBIAN12_SYSTEMD = Image("bookworm", systemd=True)
DEBIAN13_SYSTEMD = Image("trixie", systemd=True)
DEBIAN12_PLAIN = Image("bookworm", systemd=False)


@contextmanager
def network_kept():
    """The test network exists and stays until the block ends: a container made in it is on
    the network before another run's ``remove_leftovers`` may remove it."""
    with locked("network"):
        if podman("network", "exists", NETWORK, check=False).returncode != 0:
            podman("network", "create", "--subnet", f"{SUBNET}.0/24", NETWORK)
        yield


def _alive(run_id: str) -> bool:
    """Whether the test run ``run_id`` (the PID of scripts/test or of pytest) still runs."""
    try:
        os.kill(int(run_id), 0)
    except (ValueError, ProcessLookupError):
        return False
    return True


def remove_leftovers() -> None:
    """Containers an earlier run left behind (a crash, OMERO_TEST_KEEP), and the network
    once no container uses it; never what a test run still running has made (its
    OMERO_TEST_RUN, a PID, is alive)."""
    listed = podman("ps", "-a", "--format", f'{{{{.Names}}}} {{{{index .Labels "{RUN_LABEL}"}}}}').stdout
    leftovers = [name for name, _, run_id in (line.partition(" ") for line in listed.splitlines())
                 if name.startswith(PREFIX) and run_id != RUN_ID and not _alive(run_id)]
    if leftovers:
        podman("rm", "-f", "-t", "0", *leftovers)
    with locked("network"):
        podman("network", "rm", NETWORK, check=False)  # refused while in use


def _icepy_wheels(python_tag: str, wheels: Path = CACHE / "wheels") -> list[Path]:
    return sorted(wheels.glob(f"zeroc_ice-3.6.5-{python_tag}-*.whl"))


def cached_icepy_wheel(python_tag: str = "cp311") -> Path | None:
    with locked(f"wheel-{python_tag}"):  # while prepare() builds it, wait for it
        wheels = _icepy_wheels(python_tag)
    return wheels[0] if wheels else None


def build_icepy_wheel(image: "Image", python_tag: str, wheels: Path = CACHE / "wheels") -> None:
    """The IcePy wheel for ``image``'s Python, unless ``wheels`` has it: built by the deploy's
    script in a throwaway container of that image, then moved into ``wheels`` whole."""
    with locked(f"wheel-{python_tag}"):
        if _icepy_wheels(python_tag, wheels):
            return
        out = wheels / f".build-{python_tag}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        archives = _seeded(CACHE / "apt-archives" / image.suite / "icepy-build")
        # The lab's CAs, as the deploy installs them: pip reaches its index through them.
        script = ("apt-get update -qq && apt-get install -qq -y --no-install-recommends ca-certificates python3-dev "
                  "python3-venv g++ make libssl-dev libbz2-dev >/dev/null && update-ca-certificates >/dev/null "
                  "&& python3 -m venv /tmp/venv && sh /build/build-icepy-wheel.sh /tmp/venv/bin/python /out")
        # --replace: what a killed build left (no other runs now: the lock is ours).
        podman("run", "--rm", "--replace", "--name", f"{PREFIX}icepy-{python_tag}", "--label", f"{RUN_LABEL}={RUN_ID}",
               "-e", "PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
               "-v", "/usr/local/share/ca-certificates:/usr/local/share/ca-certificates:ro",
               "-v", f"{ROOT / 'files'}:/build:ro", "-v", f"{out}:/out", "-v", f"{archives}:/var/cache/apt/archives",
               image.ensure(), "sh", "-c", script)
        for wheel in _icepy_wheels(python_tag, out):
            wheel.rename(wheels / wheel.name)
        shutil.rmtree(out)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(check, what: str, timeout: float, interval: float = 0.5):
    """Poll ``check()`` until it returns a true value; that value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception:  # noqa: BLE001 - anything short of success means "not yet"
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class TestHost:
    """What every kind of test host has: a name, an address, a deploy's inventory."""

    name: str
    address: str  # where this machine (and the other test hosts) reach it
    inventory: Path | None = field(init=False, default=None)
    python_tag: str = "cp311"

    def run(self, command: str, check: bool = True) -> subprocess.CompletedProcess:
        raise NotImplementedError

    def inventory_entry(self) -> tuple[str, dict]:
        raise NotImplementedError

    def keep_built_wheel(self) -> None:
        """Cache the IcePy wheel a deploy built here, so later runs never rebuild it."""
        if cached_icepy_wheel(self.python_tag) is None:
            built = self.run(f"ls /opt/omero/wheels/zeroc_ice-3.6.5-{self.python_tag}-*.whl",
                             check=False).stdout.split()
            if built:
                target = CACHE / "wheels" / Path(built[0]).name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.read_bytes(built[0]))

    def read_bytes(self, path: str) -> bytes:
        raise NotImplementedError


def _seeded(archives: Path) -> Path:
    """A host's apt archive directory, given (hard links) every .deb the other hosts of its
    suite downloaded: on a cold cache a package is downloaded once, not once per host. apt
    moves a .deb in only once it is whole and checks it before use; it ignores other versions."""
    archives.mkdir(parents=True, exist_ok=True)
    have = {deb.name for deb in archives.glob("*.deb")}
    for deb in archives.parent.glob("*/*.deb"):
        if deb.name not in have:
            have.add(deb.name)
            try:
                (archives / deb.name).hardlink_to(deb)
            except (FileExistsError, FileNotFoundError):  # another run's host, at the same moment
                pass
    return archives


@dataclass
class PodmanHost(TestHost):
    image: Image = DEBIAN12_PLAIN

    @property
    def container(self) -> str:
        return PREFIX + self.name

    def run(self, command: str, check: bool = True) -> subprocess.CompletedProcess:
        return podman("exec", self.container, "sh", "-c", command, check=check)

    def read_bytes(self, path: str) -> bytes:
        return subprocess.run(["podman", "exec", self.container, "cat", path], check=True,
                              capture_output=True, env=PODMAN_ENV).stdout

    @property
    def testinfra(self):
        return testinfra.get_host(f"podman://{self.container}")

    def _cache_mounts(self) -> list[str]:
        mounts = []
        # apt locks its archive directory, so each host has its own; pip's and npm's are shared.
        archives = _seeded(CACHE / "apt-archives" / self.image.suite / self.name)
        for source, target in ((archives, "/var/cache/apt/archives"),
                               (CACHE / "pip", "/root/.cache/pip"), (CACHE / "npm", "/root/.npm")):
            source.mkdir(parents=True, exist_ok=True)
            mounts += ["-v", f"{source}:{target}"]
        return mounts

    def destroy(self) -> None:
        podman("rm", "-f", "-t", "5", self.container, check=False)
        (WORK / f"{self.name}.known_hosts").unlink(missing_ok=True)


@dataclass
class ContainerHost(PodmanHost):
    """A plain container: an init (catatonit) as PID 1, no systemd."""

    connector: str = "podman"  # or docker: pyinfra's @docker through podman's API socket

    def create(self) -> "ContainerHost":
        self.destroy()
        image = self.image.ensure()
        with network_kept():
            podman("run", "-d", "--name", self.container, "--label", f"{RUN_LABEL}={RUN_ID}",
                   "--hostname", self.name, "--init",
                   "--network", NETWORK, "--ip", self.address, *self._cache_mounts(),
                   image, "sleep", "infinity")
        return self

    def inventory_entry(self) -> tuple[str, dict]:
        return f"@{self.connector}/{self.container}", {"omero_address": self.address}


# systemd in each systemd host takes inotify instances from root's (all containers are root's),
# 128 by the kernel's default: a farm's hosts with other sites' beside them use them up, and
# systemd then fails to boot ("Failed to create inotify object: Too many open files").
_INOTIFY_INSTANCES, _ENOUGH_INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances"), 1024


def _enough_inotify_instances() -> None:
    if int(_INOTIFY_INSTANCES.read_text()) < _ENOUGH_INOTIFY_INSTANCES:
        _INOTIFY_INSTANCES.write_text(f"{_ENOUGH_INOTIFY_INSTANCES}\n")


@dataclass
class SystemdHost(PodmanHost):
    """systemd as PID 1, sshd, and ``admin`` with sudo; pyinfra comes in over SSH."""

    image: Image = DEBIAN12_SYSTEMD
    ssh_port: int = 0
    known_hosts: Path | None = None
    # Ports of the host also published on 127.0.0.1 (a front proxy's 80), and where: {port: local port}.
    publish: tuple[int, ...] = ()
    published: dict[int, int] = field(default_factory=dict)
    # Capabilities a VM's root has and a container's lacks, given to this one (NET_ADMIN: nftables).
    capabilities: tuple[str, ...] = ()

    def create(self) -> "SystemdHost":
        self.destroy()
        image = self.image.ensure()
        _enough_inotify_instances()
        with network_kept():
            podman("run", "-d", "--name", self.container, "--label", f"{RUN_LABEL}={RUN_ID}",
                   "--hostname", self.name, "--systemd=always",
                   # systemd sets up each unit's sandbox (namespaces) as on a VM; without it,
                   # systemd 257 (Debian 13) refuses to start a sandboxed unit at all.
                   "--cap-add", "SYS_ADMIN", *(f"--cap-add={cap}" for cap in self.capabilities),
                   "--network", NETWORK, "--ip", self.address, "-p", "127.0.0.1::22",
                   *(f"-p127.0.0.1::{port}" for port in self.publish),
                   *self._cache_mounts(), image, "/sbin/init")
        self.wait_booted()
        self.ssh_port = self._local_port(22)
        self.published = {port: self._local_port(port) for port in self.publish}
        self.known_hosts = WORK / f"{self.name}.known_hosts"
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        host_key = self.run("cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.ssh_port} {' '.join(host_key)}\n")
        return self

    def _local_port(self, port: int) -> int:
        return int(podman("port", self.container, f"{port}/tcp").stdout.strip().rsplit(":", 1)[1])

    def wait_booted(self, timeout: float = 60) -> str:
        """Wait until systemd has finished starting up; returns its state."""
        def state():
            state = self.run("systemctl is-system-running", check=False).stdout.strip()
            return state if state in ("running", "degraded") else None

        return wait_for(state, f"{self.name} to boot", timeout)

    def restart(self) -> None:
        podman("restart", "-t", "10", self.container)

    def inventory_entry(self) -> tuple[str, dict]:
        return self.name, ssh_data(self.ssh_port, self.known_hosts) | {"omero_address": self.address}


def ssh_data(port: int, known_hosts: Path) -> dict:
    """Inventory data of a host reached as ``admin`` over SSH on 127.0.0.1, using sudo."""
    return {
        "ssh_hostname": "127.0.0.1",
        "ssh_port": port,
        "ssh_user": ADMIN,
        "ssh_key": str(ssh_key()),
        "ssh_known_hosts_file": str(known_hosts),
        "ssh_strict_host_key_checking": "yes",
        "ssh_connect_retries": 3,
        "_sudo": True,
    }


def host_data(host: TestHost, secrets_dir: Path, **overrides) -> dict:
    """Options for a test host: the lab's CAs, the wheel cache, two web workers."""
    data = {
        "omero_web_workers": 2,
        "omero_secrets_dir": str(secrets_dir),
        "omero_extra_ca_certificates": EXTRA_CA_CERTIFICATES,
    }
    wheel = cached_icepy_wheel(host.python_tag)
    if wheel:
        data.update(omero_icepy_wheel=str(wheel), omero_icepy_wheel_sha256=sha256_of(wheel))
    data.update(overrides)
    return data


def write_inventory(path: Path, groups: dict[str, list[TestHost]], data: dict[str, dict]) -> Path:
    """An inventory file in the form sysadmins write: groups of (host, data) tuples."""
    lines = ['"""Generated by the test harness."""']
    for group, hosts in groups.items():
        entries = []
        for host in hosts:
            name, connection = host.inventory_entry()
            entries.append(repr((name, connection | data[host.name])))
        lines.append(f"{group} = [{', '.join(entries)}]")
    path.write_text("\n".join(lines) + "\n")
    for host in {host.name: host for hosts in groups.values() for host in hosts}.values():
        host.inventory = path
    return path


def pyinfra(inventory: Path, *args: str, deploy_file: str = "deploy.py", timeout: int = 2400,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the deploy; with no ``args``, for real (``-y``: no prompt)."""
    return subprocess.run([PYINFRA, *(args or ["-y"]), str(inventory), deploy_file], cwd=ROOT,
                          env={**CLEAN_ENV, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def deploy(inventory: Path, *hosts: TestHost, env: dict | None = None, timeout: int = 2400,
           verbosity: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Deploy for real; ``verbosity``: pyinfra's -v/-vv/--debug, so a test sees what they print."""
    result = pyinfra(inventory, "-y", *verbosity, env=env, timeout=timeout)
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
def deployed_together(name: str, groups: dict[str, list[TestHost]], directory: Path, secrets_dir: Path,
                      overrides: dict[str, dict] | None = None,
                      verbosity: tuple[str, ...] = ()) -> Iterator[list[TestHost]]:
    """Every host of ``groups`` made fresh and deployed in one pyinfra run, as a site's
    inventory of several hosts is, each with its ``overrides``; destroyed afterwards."""
    hosts = list({host.name: host for members in groups.values() for host in members}.values())
    try:
        for host in hosts:
            host.create()
        inventory = write_inventory(directory / f"{name}.py", groups, {
            host.name: host_data(host, secrets_dir, **(overrides or {}).get(host.name, {})) for host in hosts})
        deploy(inventory, *hosts, verbosity=verbosity)
        yield hosts
    finally:
        if not KEEP:
            for host in hosts:
                host.destroy()


@contextmanager
def deployed(host, groups: list[str], directory: Path, secrets_dir: Path,
             verbosity: tuple[str, ...] = (), **overrides) -> Iterator:
    """``host`` made fresh, in ``groups``, deployed; destroyed afterwards."""
    with deployed_together(host.name, {group: [host] for group in groups}, directory, secrets_dir,
                           {host.name: overrides}, verbosity) as (only,):
        yield only


def hosts_with_changes(inventory: Path, deploy_file: str = "deploy.py",
                       env: dict | None = None) -> dict[str, list[str]]:
    """What a second run would change: {operation name: hosts} from `pyinfra --dry --json`."""
    result = pyinfra(inventory, "--dry", "--json", deploy_file=deploy_file, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    plan = json.loads(result.stdout)["plan"]
    return {op["name"]: op["hosts_with_change"] + op["hosts_with_conditional_change"]
            for op in plan if op["hosts_with_change"] or op["hosts_with_conditional_change"]}


# -- the virtual machine ------------------------------------------------------------------
def vm_disk() -> Path:
    """A Debian 12 qcow2 disk with a kernel, systemd, sshd and ``admin`` (made once)."""
    key = ssh_key().with_suffix(".pub").read_text()
    disk = CACHE / f"vm-bookworm-{digest(_VM, key, _SSH_HOST_KEYS, _SSHD_CONFIG)}"
    with locked("vm"):
        if not (disk / "root.qcow2").exists():
            work = WORK / "vm-root"
            debootstrap("bookworm", _VM, work)
            _add_admin(work)
            (work / "etc/hostname").write_text("omero-vm\n")
            (work / "etc/fstab").write_text("/dev/vda / ext4 defaults 0 1\n")
            # user-mode networking: DHCP on the NIC, its DNS forwarder at 10.0.2.3.
            (work / "etc/systemd/network/10-dhcp.network").write_text(
                "[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n")
            (work / "etc/resolv.conf").unlink(missing_ok=True)
            (work / "etc/resolv.conf").write_text("nameserver 10.0.2.3\n")
            run("chroot", str(work), "systemctl", "enable", "systemd-networkd")
            for stale in CACHE.glob("vm-bookworm-*"):
                shutil.rmtree(stale)
            disk.mkdir(parents=True)
            # The kernel boots directly (no boot loader); the root's own kernel and initrd.
            shutil.copy(sorted((work / "boot").glob("vmlinuz-*"))[-1], disk / "vmlinuz")
            shutil.copy(sorted((work / "boot").glob("initrd.img-*"))[-1], disk / "initrd.img")
            raw = disk / "root.raw"
            run("truncate", "-s", "8G", str(raw))
            # mkfs -d fills the file system from the directory: no loop device needed.
            run("mkfs.ext4", "-q", "-L", "root", "-d", str(work), str(raw))
            run("qemu-img", "convert", "-O", "qcow2", str(raw), str(disk / "root.partial"))
            raw.unlink()
            (disk / "root.partial").rename(disk / "root.qcow2")
            shutil.rmtree(work)
    return disk


@dataclass
class VirtualMachine(TestHost):
    """A Debian 12 VM under qemu's software emulation, on a copy-on-write overlay disk."""

    ssh_port: int = 0
    http_port: int = 0
    known_hosts: Path | None = None
    pid: int | None = None
    directory: Path = field(init=False)

    def __post_init__(self):
        self.directory = WORK / self.name

    def create(self) -> "VirtualMachine":
        self.destroy()
        base = vm_disk()
        self.directory.mkdir(parents=True)
        overlay = self.directory / "disk.qcow2"
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base / "root.qcow2"), "-F", "qcow2",
            str(overlay))
        self.ssh_port, self.http_port = free_port(), free_port()
        accel = "kvm" if os.environ.get("OMERO_TEST_VM_KVM") else "tcg,tb-size=256"
        run("qemu-system-x86_64", "-accel", accel, "-cpu", "max", "-smp", "2", "-m", "2048",
            "-kernel", str(base / "vmlinuz"), "-initrd", str(base / "initrd.img"),
            "-append", "root=/dev/vda rw console=ttyS0 quiet",
            "-drive", f"file={overlay},if=virtio,format=qcow2",
            "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22,"
                       f"hostfwd=tcp:127.0.0.1:{self.http_port}-:80",
            "-device", "virtio-net-pci,netdev=net0",
            "-display", "none", "-serial", f"file:{self.directory / 'console.log'}",
            "-pidfile", str(self.directory / "qemu.pid"), "-daemonize")
        self.pid = int((self.directory / "qemu.pid").read_text())
        self.wait_for_ssh()
        host_key = self.run("cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[:2]
        self.known_hosts = self.directory / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.ssh_port} {' '.join(host_key)}\n")
        return self

    def wait_for_ssh(self, timeout: float = 600) -> None:
        wait_for(lambda: self.run("systemctl is-system-running --wait", check=False).stdout.strip()
                 in ("running", "degraded"), f"{self.name} to boot", timeout, interval=2)

    def run(self, command: str, check: bool = True) -> subprocess.CompletedProcess:
        # Before the harness knows the host key it trusts the first one (a fresh VM's).
        known = (["-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes"]
                 if self.known_hosts else
                 ["-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no"])
        return run("ssh", "-q", "-i", str(ssh_key()), "-p", str(self.ssh_port), *known,
                   "-o", "ConnectTimeout=10", "-o", "BatchMode=yes", f"{ADMIN}@127.0.0.1",
                   f"sudo sh -c {shlex.quote(command)}", check=check)

    def read_bytes(self, path: str) -> bytes:
        return subprocess.run(["ssh", "-q", "-i", str(ssh_key()), "-p", str(self.ssh_port),
                               "-o", f"UserKnownHostsFile={self.known_hosts}", f"{ADMIN}@127.0.0.1",
                               f"sudo cat {shlex.quote(path)}"], check=True, capture_output=True).stdout

    def inventory_entry(self) -> tuple[str, dict]:
        return self.name, ssh_data(self.ssh_port, self.known_hosts)

    def destroy(self) -> None:
        pid_file = self.directory / "qemu.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        shutil.rmtree(self.directory, ignore_errors=True)


def prepare() -> None:
    """Every test image, the VM disk and Debian 13's IcePy wheel made ahead, side by side
    (downloads, mostly, and one compiler): scripts/test runs this beside the cp311 IcePy
    build on a cold cache. Each is made under its lock, so a test that needs one meanwhile
    waits for it; cached, each is a check."""
    def debian12():
        for image in (DEBIAN12_SYSTEMD, DEBIAN12_PLAIN):
            image.ensure()
        # The container image's base root, as omero_image.build makes it (test_image.py).
        ensure_image(f"localhost/omero-image-base-{BASE_SUITE}:{digest(BASE_PACKAGES)}", BASE_SUITE, BASE_PACKAGES,
                     "/bin/sh", PODMAN_ENV)

    with ThreadPoolExecutor(3) as pool:
        for made in [pool.submit(debian12), pool.submit(vm_disk),
                     pool.submit(build_icepy_wheel, DEBIAN13_SYSTEMD, "cp313")]:
            made.result()


def interrupted_deploy(inventory: Path, operation: str, *, during: float | None = None) -> str:
    """Run the deploy and kill it (SIGKILL, as a dropped connection or a dead laptop would)
    once ``operation`` has completed, or ``during`` seconds after it started. Returns the
    output up to the kill; fails if the deploy never reached ``operation``."""
    process = subprocess.Popen([PYINFRA, "-y", str(inventory), "deploy.py"], cwd=ROOT,
                               env={**CLEAN_ENV, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output, reached, started = [], False, 0.0
    try:
        for line in process.stdout:
            output.append(line)
            if "Starting operation:" in line:
                if reached:
                    break  # the next operation: ``operation`` is complete
                reached = line.split("Starting operation:", 1)[1].strip() == operation
                started = time.monotonic()
                if reached and during is not None:
                    time.sleep(during)
                    break
        else:
            raise AssertionError(f"the deploy ended without reaching {operation!r}:\n"
                                 + "".join(output[-30:]))
    finally:
        process.kill()
        process.wait()
    assert reached and (during is None or time.monotonic() - started >= during)
    return "".join(output)


if __name__ == "__main__":
    prepare()
