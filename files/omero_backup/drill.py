"""omero-restore --drill (a scratch copy restored and compared) and ``omero-backup schedule``
(the timers of hosts without systemd)."""

import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from .backup import as_postgres, manifest_of, parse_manifest
from .restic import MANIFEST, STAGING, log, now, repositories, write_status
from .staging import create_database, data_files, pg_restore


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def do_drill(config, args):
    """Restore into scratch space and compare; the live site is only read."""
    repository = repositories(config, args.repository)[0]
    snapshot = repository.snapshot(args.snapshot)
    started = now()
    scratch = tempfile.mkdtemp(prefix="drill-", dir=args.scratch or config["state_dir"])
    report = {"snapshot": snapshot["short_id"], "snapshot_time": snapshot["time"],
              "repository": repository.name, "problems": []}
    problems = report["problems"]
    drill_db = f"{config['database']['name']}_drill" if config.get("database") else None
    try:
        repository.restic("restore", snapshot["id"], "--target", scratch, "--verify", stdout=subprocess.DEVNULL)
        if config.get("database") and config["dump_dir"] in snapshot["paths"]:
            dump_directory = scratch + config["dump_dir"]
            with open(os.path.join(dump_directory, MANIFEST)) as handle:
                expected = parse_manifest(handle.read())
            create_database(config, drill_db, "postgres")
            # Owners and grants left out: the drill never touches the live cluster's roles.
            pg_restore(config, dump_directory, drill_db, "--no-owner", "--no-privileges")
            restored = manifest_of(config, drill_db)
            for table in sorted(set(expected) | set(restored)):
                if expected.get(table) != restored.get(table):
                    problems.append(f"table {table}: backed up {expected.get(table)}, restored {restored.get(table)}")
            tables = {table: counts for table, counts in expected.items() if table != "large objects"}
            report["tables"], report["rows"] = len(tables), sum(count for count, _ in tables.values())
            report["large_objects"] = expected.get("large objects", (0, ""))[0]
        if config["data_dir"] in snapshot["paths"]:
            report.update(compare_files(config, scratch + config["data_dir"], snapshot, problems))
    finally:
        if drill_db:
            db = config["database"]
            subprocess.run(as_postgres(os.path.join(db["bin_dir"], "dropdb"), "--if-exists", "-p", str(db["port"]),
                                       drill_db))
        shutil.rmtree(scratch, ignore_errors=True)
    report["result"] = "passed" if not problems else "FAILED"
    print(json.dumps(report, indent=2))
    write_status(config, "drill", {"state": "ok" if not problems else "failed", "started": started.isoformat(),
                                   "finished": now().isoformat(), **report})
    return 0 if not problems else 1


def compare_files(config, restored_dir, snapshot, problems):
    """Every restored file against the live one: a file unchanged since the backup (same
    size and mtime) must have the same content; a live file older than the backup must be
    in it (unless excluded)."""
    live_dir, backed_up = config["data_dir"], parse_time(snapshot["time"])
    restored = data_files(restored_dir)
    identical = changed = gone = 0
    for relative in restored:
        copy, live = os.path.join(restored_dir, relative), os.path.join(live_dir, relative)
        if os.path.islink(copy):
            continue
        try:
            live_stat = os.stat(live)
        except FileNotFoundError:
            gone += 1
            continue
        copy_stat = os.stat(copy)
        if (live_stat.st_size, int(live_stat.st_mtime)) != (copy_stat.st_size, int(copy_stat.st_mtime)):
            changed += 1
        elif sha256(copy) == sha256(live):
            identical += 1
        else:
            problems.append(f"{live} differs from its backup though unchanged since")
    in_backup = set(restored)
    missing = [relative for relative in data_files(live_dir, [*config["excludes"], os.path.join(live_dir, STAGING)])
               if relative not in in_backup and os.lstat(os.path.join(live_dir, relative)).st_mtime < backed_up]
    problems.extend(f"{os.path.join(live_dir, relative)} is older than the backup but not in it"
                    for relative in missing[:20])
    return {"files": len(restored), "files_identical_to_live": identical,
            "files_changed_since_backup": changed, "files_deleted_since_backup": gone}


def parse_time(text):
    """restic's snapshot time (RFC 3339, nanoseconds) as a POSIX timestamp."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.datetime.fromisoformat(match.group(1) + zone).timestamp()


# -- the schedule (hosts without systemd) -----------------------------------------------
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_SCHEDULE = re.compile(r"(?:(Mon|Tue|Wed|Thu|Fri|Sat|Sun) )?([01][0-9]|2[0-3]):([0-5][0-9])"
                       r"|every ([1-9][0-9]{0,3})([mh])")


def next_run(schedule, after):
    """The next time (local, naive) ``schedule`` is due after ``after``."""
    day, hour, minute, every, unit = _SCHEDULE.fullmatch(schedule).groups()
    if every:
        return after + datetime.timedelta(minutes=int(every) * (60 if unit == "h" else 1))
    due = after.replace(hour=int(hour), minute=int(minute), second=0, microsecond=0)
    while due <= after or (day and _DAYS[due.weekday()] != day):
        due += datetime.timedelta(days=1)
    return due


def do_schedule(config):
    """supervisord's stand-in for systemd timers: each job run when due, as a child whose
    exit status is logged; a failed run does not stop the schedule."""
    jobs = {"run": config["schedule"], "check": config["check_schedule"]}
    due = {job: next_run(schedule, datetime.datetime.now()) for job, schedule in jobs.items()}
    while True:
        log("next: " + ", ".join(f"{job} at {when:%Y-%m-%d %H:%M}" for job, when in sorted(due.items())))
        job = min(due, key=due.get)
        time.sleep(max(0.0, (due[job] - datetime.datetime.now()).total_seconds()))
        code = subprocess.run([sys.argv[0], job]).returncode
        log(f"{job} exited with {code}")
        due[job] = next_run(jobs[job], datetime.datetime.now())
