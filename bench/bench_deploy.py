"""Time the deploy on a fresh Debian 12 test host (root): a systemd host reached over SSH
as a sudo user, as a lab's server is. A cold all-in-one deploy (omero_database +
omero_web), a second run that changes nothing, and a dry run.

    .venv/bin/python bench/bench_deploy.py [--rounds N]

Uses the test harness's hosts and caches (host image, IcePy wheel, per-host apt cache).
Prints a Markdown table for docs/benchmarks.md.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.host.testhosts import (  # noqa: E402
    DEBIAN12_SYSTEMD,
    SUBNET,
    SystemdHost,
    cached_icepy_wheel,
    host_data,
    pyinfra,
    remove_leftovers,
    write_inventory,
)


def timed(step) -> float:
    start = time.perf_counter()
    result = step()
    elapsed = time.perf_counter() - start
    if result is not None and getattr(result, "returncode", 0) != 0:
        raise SystemExit(f"step failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="fresh hosts to deploy (default 3)")
    args = parser.parse_args()
    if cached_icepy_wheel() is None:
        raise SystemExit("no cached IcePy wheel: run scripts/test once first")
    DEBIAN12_SYSTEMD.ensure()
    remove_leftovers()
    figures: dict[str, list[float]] = {"fresh host (boot, sshd)": [], "cold deploy": [],
                                       "second run (no change)": [], "dry run": []}
    with tempfile.TemporaryDirectory() as work:
        for _ in range(args.rounds):
            host = SystemdHost("bench", f"{SUBNET}.90")
            try:
                figures["fresh host (boot, sshd)"].append(timed(host.create))
                inventory = write_inventory(Path(work) / "bench.py",
                                            {"omero_database": [host], "omero_web": [host]},
                                            {host.name: host_data(host, Path(work) / "secrets")})
                for step, args in (("cold deploy", ()), ("second run (no change)", ()), ("dry run", ("--dry",))):
                    figures[step].append(timed(lambda args=args, inventory=inventory: pyinfra(inventory, *args)))
            finally:
                host.destroy()
    remove_leftovers()
    print(f"| step | median of {args.rounds} (s) | min (s) | max (s) |")
    print("|---|---|---|---|")
    for step, values in figures.items():
        print(f"| {step} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |")


if __name__ == "__main__":
    main()
