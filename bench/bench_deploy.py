"""Time the deploy against installing the same software by hand, and no-op runs of 1-10 hosts.

    .venv/bin/python bench/bench_deploy.py [--rounds N] [--scale 1,4,10] [--top N] [--baseline TREE]

On fresh Debian 12 systemd test hosts (reached over SSH as a sudo user, as a lab's
server is), with the harness's caches (host image, IcePy wheel, apt and pip caches):

- a cold all-in-one deploy (omero_database + omero_web), a second run that changes
  nothing, and a dry run, each clocked per fact and per operation;
- on a second fresh host, the bare install of the same software: the .deb packages the
  deploy left installed (``apt-get install`` of exactly that set) and the same pip
  requirements in the same venvs, nothing else;
- no-op runs of 1, 4 and 10 deployed hosts in one pyinfra run, with the CPU time each
  took on the controller (the pyinfra process) and on the hosts (their containers' cgroups):
  here both share the machine's cores.

With ``--baseline TREE`` (another checkout of this repository, e.g. ``git worktree add``),
every no-op run is also timed with that tree's deploy.py on the same hosts, right after
this tree's: before/after figures taken under the same load.

Prints Markdown tables for docs/benchmarks.md.
"""

import argparse
import json
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.host.testhosts import (  # noqa: E402
    CACHE,
    CLEAN_ENV,
    DEBIAN12_SYSTEMD,
    EXTRA_CA_CERTIFICATES,
    PYINFRA,
    ROOT,
    SUBNET,
    SystemdHost,
    cached_icepy_wheel,
    host_data,
    podman,
    remove_leftovers,
    write_inventory,
)

PROFILER = Path(__file__).with_name("profile_pyinfra.py")
PYTHON = str(Path(PYINFRA).with_name("python"))


def clocked(step: Callable[..., subprocess.CompletedProcess], *args, **kwargs) -> float:
    start = time.perf_counter()
    result = step(*args, **kwargs)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"step failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
    return elapsed


def pyinfra(inventory: Path, *args: str, profile: Path | None = None, tree: Path = ROOT) -> subprocess.CompletedProcess:
    command = [PYTHON, str(PROFILER), str(profile)] if profile else [PYINFRA]
    return subprocess.run([*command, *(args or ["-y"]), str(inventory), "deploy.py"], cwd=tree,
                          env=CLEAN_ENV, capture_output=True, text=True, timeout=3600)


def installed_debs(host: SystemdHost) -> set[str]:
    return set(host.run("dpkg-query -W -f '${db:Status-Abbrev}${Package}\\n' | sed -n 's/^ii *//p'")
               .stdout.split())


def bare_install(deployed: SystemdHost, bare: SystemdHost, before: set[str]) -> subprocess.CompletedProcess:
    """What a sysadmin would type for the same software: trust the lab's CA, apt-get the
    packages, and pip the same requirements into the same venvs."""
    debs = sorted(installed_debs(deployed) - before)
    venvs = deployed.run("find /opt -xdev -name pyvenv.cfg -printf '%h\\n'").stdout.split()
    wheel = cached_icepy_wheel(bare.python_tag)
    bare.run("mkdir /root/ca")
    for ca in EXTRA_CA_CERTIFICATES:
        podman("cp", ca, f"{bare.container}:/root/ca/")
    podman("cp", str(wheel), f"{bare.container}:/root/")
    script = ["set -e", "export DEBIAN_FRONTEND=noninteractive", "apt-get -q update >/dev/null",
              f"apt-get -q -y --no-install-recommends install {' '.join(map(shlex.quote, debs))} >/dev/null",
              "cp /root/ca/*.crt /usr/local/share/ca-certificates/", "update-ca-certificates >/dev/null",
              "export PIP_CERT=/etc/ssl/certs/ca-certificates.crt"]
    for venv in venvs:
        requirements = deployed.run(f"{shlex.quote(venv)}/bin/pip freeze --all --exclude pip").stdout
        script += [f"python3 -m venv {shlex.quote(venv)}",
                   f"printf %s {shlex.quote(requirements)} > /root/requirements.txt",
                   f"{shlex.quote(venv)}/bin/pip install -q --find-links /root "
                   "-r /root/requirements.txt"]
    return bare.run("\n".join(script), check=False)


def top(profile: Path, kind: str, count: int) -> list[tuple[str, int, float]]:
    table = json.loads(profile.read_text())[kind]
    return sorted(((name, runs, seconds) for name, (runs, seconds) in table.items()),
                  key=lambda row: -row[2])[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="fresh host pairs (default 1)")
    parser.add_argument("--scale", default="1,4,10", help="host counts of the no-op runs (default 1,4,10)")
    parser.add_argument("--top", type=int, default=12, help="rows of each profile table (default 12)")
    parser.add_argument("--baseline", type=Path, help="another checkout: its no-op runs timed beside this tree's")
    parser.add_argument("--scale-only", action="store_true", help="only the no-op runs of 1-10 hosts")
    args = parser.parse_args()
    scale = sorted(int(count) for count in args.scale.split(","))
    if cached_icepy_wheel() is None:
        raise SystemExit("no cached IcePy wheel: run scripts/test once first")
    DEBIAN12_SYSTEMD.ensure()
    remove_leftovers()
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        if not args.scale_only:
            figures = compare_with_bare_install(work, args.rounds, args.baseline)
            median = {step: statistics.median(values) for step, values in figures.items()}
            bare_seconds = median["bare install of the same software"]
            print(f"| step | median of {args.rounds} (s) | min (s) | max (s) | / bare install |")
            print("|---|---|---|---|---|")
            for step, values in figures.items():
                print(f"| {step} | {median[step]:.1f} | {min(values):.1f} | {max(values):.1f} "
                      f"| {median[step] / bare_seconds:.2f} |")
            profiles = [("cold deploy", "cold.json"), ("second run (no change)", "noop.json")]
            if args.baseline:
                profiles.append(("second run (no change), baseline", "baseline-noop.json"))
            for label, profile in profiles:
                for kind in ("operation", "fact"):
                    print(f"\n{label}, the {args.top} slowest {kind}s (last round):\n")
                    print(f"| {kind} | runs | seconds |")
                    print("|---|---|---|")
                    for name, runs, seconds in top(work / profile, kind, args.top):
                        print(f"| {name} | {runs} | {seconds:.2f} |")
        trees = {"": ROOT, ", baseline": args.baseline} if args.baseline else {"": ROOT}
        scaled = no_op_runs(work, scale, max(args.rounds, 3), trees)
        for label, runs in scaled.items():
            one = statistics.median(wall for wall, _, _ in runs[scale[0]])
            print(f"\n| hosts in one no-op run{label} | median of {len(runs[scale[0]])} (s) | / one host "
                  "| controller CPU (s) | hosts' CPU (s) |")
            print("|---|---|---|---|---|")
            for count, values in runs.items():
                wall, controller, hosts = (statistics.median(column) for column in zip(*values, strict=True))
                print(f"| {count} | {wall:.2f} | {wall / one:.2f} | {controller:.2f} | {hosts:.2f} |")
    remove_leftovers()


def compare_with_bare_install(work: Path, rounds: int, baseline: Path | None) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"cold deploy": [], "bare install of the same software": [],
                                       "second run (no change)": [], "dry run": []}
    if baseline:
        figures["second run (no change), baseline"] = []
    # The hosts' apt archives are cached per host name: both warm, or both cold.
    warm = all(any((CACHE / "apt-archives" / "bookworm" / name).glob("*.deb")) for name in ("bench", "bare"))
    for round_ in range(rounds + (0 if warm else 1)):
        deployed, bare = SystemdHost("bench", f"{SUBNET}.200"), SystemdHost("bare", f"{SUBNET}.201")
        try:
            deployed.create()
            bare.create()
            before = installed_debs(bare)
            inventory = write_inventory(work / "bench.py", {"omero_database": [deployed], "omero_web": [deployed]},
                                        {deployed.name: host_data(deployed, work / "secrets")})
            times = {"cold deploy": clocked(pyinfra, inventory, profile=work / "cold.json"),
                     "second run (no change)": clocked(pyinfra, inventory, profile=work / "noop.json"),
                     "dry run": clocked(pyinfra, inventory, "--dry")}
            if baseline:
                times["second run (no change), baseline"] = clocked(
                    pyinfra, inventory, profile=work / "baseline-noop.json", tree=baseline)
            times["bare install of the same software"] = clocked(bare_install, deployed, bare, before)
            if round_ or warm:
                for step, seconds in times.items():
                    figures[step].append(seconds)
        finally:
            deployed.destroy()
            bare.destroy()
    return figures


def cgroup_cpu_usage(host: SystemdHost) -> Callable[[], float]:
    """A reader of the CPU seconds the host's container has used (cgroup v2, or v1's cpuacct)."""
    path = podman("inspect", "--format", "{{.State.CgroupPath}}", host.container).stdout.strip().lstrip("/")
    v2 = Path("/sys/fs/cgroup") / path / "cpu.stat"
    if v2.exists():
        return lambda: int(next(line for line in v2.read_text().splitlines()
                                if line.startswith("usage_usec")).split()[1]) / 1e6
    v1 = Path("/sys/fs/cgroup/cpuacct") / path / "cpuacct.usage"
    return lambda: int(v1.read_text()) / 1e9


def clocked_with_cpu(usages: list[Callable[[], float]], *args, **kwargs) -> tuple[float, float, float]:
    """A pyinfra run: its wall time, the controller's CPU time and the hosts' (``usages``)."""
    def cpu() -> tuple[float, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return children.ru_utime + children.ru_stime, sum(usage() for usage in usages)

    controller, on_hosts = cpu()
    wall = clocked(pyinfra, *args, **kwargs)
    controller_after, on_hosts_after = cpu()
    return wall, controller_after - controller, on_hosts_after - on_hosts


def no_op_runs(work: Path, scale: list[int], rounds: int,
               trees: dict[str, Path]) -> dict[str, dict[int, list[tuple[float, float, float]]]]:
    """A site of one all-in-one host and web hosts (OMERO has one database host):
    the no-op run of its first 1, 4, 10 hosts in one pyinfra run, with each of ``trees``
    in turn (by label): wall time, controller's and hosts' CPU time of each."""
    hosts = [SystemdHost(f"scale{index}", f"{SUBNET}.{210 + index}") for index in range(scale[-1])]
    data = {host.name: host_data(host, work / "secrets") for host in hosts}
    scaled: dict[str, dict[int, list]] = {label: {count: [] for count in scale} for label in trees}
    try:
        for host in hosts:
            host.create()
        inventories = {count: write_inventory(work / f"scale{count}.py",
                                              {"omero_database": hosts[:1], "omero_web": hosts[:count]}, data)
                       for count in scale}
        clocked(pyinfra, inventories[scale[-1]])
        usages = [cgroup_cpu_usage(host) for host in hosts]
        for _ in range(rounds):
            for count in scale:
                for label, tree in trees.items():
                    scaled[label][count].append(clocked_with_cpu(usages, inventories[count], tree=tree))
    finally:
        for host in hosts:
            host.destroy()
    return scaled


if __name__ == "__main__":
    main()
