"""Time backups and restores on test hosts (root): an all-in-one Debian 12 host (omero_database
+ omero_web) with a local repository, and a second host in omero_backup reached over SFTP.

    .venv/bin/python bench/bench_backup.py [--rows N] [--file-mib N]

Writes a table of N rows (about 190 bytes each on disk) and N MiB of incompressible files
in the data directory, then times: the first backup (both repositories), a second backup
after 1% more files, the drill, and a restore from the backup host after the database is
dropped and the files deleted. Prints a Markdown table for the README.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.host.testhosts import (  # noqa: E402
    SUBNET,
    SystemdHost,
    deploy,
    host_data,
    write_inventory,
)


def timed(host, command: str) -> float:
    start = time.perf_counter()
    result = host.run(command, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--file-mib", type=int, default=1024, help="MiB of files (in 4 MiB files)")
    args = parser.parse_args()
    aio, store = SystemdHost("backup-bench-aio", f"{SUBNET}.82"), SystemdHost("backup-bench-store", f"{SUBNET}.83")
    with tempfile.TemporaryDirectory() as work:
        try:
            for host in (aio, store):
                host.create()
            inventory = write_inventory(
                Path(work) / "bench-backup.py",
                {"omero_database": [aio], "omero_web": [aio], "omero_backup": [store]},
                {aio.name: host_data(aio, Path(work), omero_backup_local_dir="/srv/omero-backup-local"),
                 store.name: host_data(store, Path(work))})
            deploy(inventory, aio, store)
            aio.run("runuser -u postgres -- psql -Xq -d omero -c \"SET ROLE omero; CREATE TABLE t (id serial, "
                    "name text, v double precision, b bytea); INSERT INTO t (name, v, b) SELECT 'row ' || g, g / 7.0, "
                    f"decode(md5(g::text) || md5((g + 1)::text), 'hex') FROM generate_series(1, {args.rows}) g\"")
            files = args.file_mib // 4
            aio.run(f"mkdir -p /OMERO/ManagedRepository && for i in $(seq {files}); do "
                    "head -c 4194304 /dev/urandom > /OMERO/ManagedRepository/f$i; done")
            database = int(aio.run("runuser -u postgres -- psql -XAt -d omero -c "
                                   "\"SELECT pg_database_size('omero')\"").stdout)
            rows = [("data set", f"database {database / 2**20:.0f} MiB ({args.rows:,} rows), "
                                 f"files {files * 4} MiB ({files} files)")]
            rows.append(("first backup (local + backup host)",
                         f"{timed(aio, 'systemctl start omero-backup.service'):.0f} s"))
            status = json.loads(aio.run("cat /var/lib/omero-backup/status.json").stdout)["backup"]
            sizes = status["repositories"]
            rows.append(("repository size after it", ", ".join(
                f"{name} {result['repository_size_bytes'] / 2**20:.0f} MiB" for name, result in sizes.items())))
            extra = max(1, files // 100)
            aio.run(f"for i in $(seq {extra}); do head -c 4194304 /dev/urandom > /OMERO/ManagedRepository/new$i; done")
            rows.append((f"second backup ({extra * 4} MiB of new files)",
                         f"{timed(aio, 'systemctl start omero-backup.service'):.0f} s"))
            rows.append(("drill (restore into scratch, compare)", f"{timed(aio, 'omero-restore --drill'):.0f} s"))
            aio.run("runuser -u postgres -- dropdb omero && rm -rf /OMERO")
            rows.append(("restore from the backup host",
                         f"{timed(aio, 'omero-restore --repository remote'):.0f} s"))
        finally:
            for host in (aio, store):
                host.destroy()
    print("| step | measured |\n|---|---|")
    for step, value in rows:
        print(f"| {step} | {value} |")


if __name__ == "__main__":
    main()
