"""omero-backup / omero-restore: OMERO's database and binary repository in restic repositories.

Installed by omero-pyinfra, configured by /etc/omero-backup/backup.json (written by the
deploy). Runs as root. Commands:

  omero-backup run          dump the database, back it up with the data directory into
                            every repository, apply the retention policy, record status
  omero-backup check        restic check of every repository (part of the data read back)
  omero-backup add FILE...  back FILE up on its own, tagged pre-upgrade (kept until removed)
  omero-backup status       print the status file (what monitoring reads)
  omero-backup snapshots    list the snapshots of a repository
  omero-backup schedule     run `run` and `check` on their schedules (supervisord hosts)
  omero-backup init         create the repositories that do not exist yet
  omero-backup present      name the repositories that exist (and can be read)
  omero-backup restic NAME ARGS...
                            restic ARGS on repository NAME, with its password file and SSH settings
  omero-restore [--snapshot ID] [--repository NAME] [--force]
                            restore a snapshot (default: the latest): staged beside the live
                            site, checked, then swapped in; put back as it was on any failure
  omero-restore --drill [--snapshot ID] [--repository NAME] [--scratch DIR]
                            restore into a scratch database and directory, compare, report

The repository password is read by restic from a root-only file (RESTIC_PASSWORD_FILE),
never from a command line. Every failure exits non-zero and is recorded in the status.
"""

import argparse
import json
import os
import subprocess
import sys

from .backup import do_add, do_backup, do_check
from .drill import do_drill, do_schedule
from .restic import CONFIG, TAG, Failure, log, read_status, recorded, repositories
from .restore import do_restore
from .staging import lock


# -- the command line -------------------------------------------------------------------
def main(argv=None):
    restore = os.path.basename(sys.argv[0]) == "omero-restore"
    parser = argparse.ArgumentParser(prog="omero-restore" if restore else "omero-backup",
                                     description=__doc__.split("\n\n")[0])
    if restore:
        parser.add_argument("--snapshot", default="latest", help="snapshot ID (default: the latest backup)")
        parser.add_argument("--repository", help="repository name (default: the first, local before remote)")
        parser.add_argument("--force", action="store_true",
                            help="replace a database that holds tables and overwrite existing files")
        parser.add_argument("--drill", action="store_true",
                            help="restore into a scratch database and directory, compare, touch nothing live")
        parser.add_argument("--scratch", help="directory for the drill's scratch copy (default: /var/lib/omero-backup)")
    else:
        parser.add_argument("command", choices=["run", "check", "add", "status", "snapshots", "schedule",
                                                "init", "present", "restic"])
        parser.add_argument("files", nargs="*", help="for add: the files to keep; for restic: the repository "
                            "name, then restic's arguments")
        parser.add_argument("--repository", help="for snapshots: the repository (default: the first)")
    argv = sys.argv[1:] if argv is None else argv
    # restic's own options pass through untouched.
    passed = argv[2:] if not restore and argv[:1] == ["restic"] else []
    args = parser.parse_args(argv[:2] if passed or argv[:1] == ["restic"] else argv)
    with open(CONFIG) as handle:
        config = json.load(handle)
    os.umask(0o077)
    try:
        if not restore and args.command == "restic":
            if len(args.files) != 1:
                parser.error("restic needs a repository name, then restic's arguments")
            return repositories(config, args.files[0])[0].restic(*passed, check=False).returncode
        if restore:
            return do_drill(config, args) if args.drill else do_restore(config, args)
        if args.command == "run":
            held = lock(config)
            code = recorded(config, "backup", lambda: do_backup(config))
            held.close()
            return code
        if args.command == "check":
            return recorded(config, "check", lambda: do_check(config))
        if args.command == "add":
            if not args.files:
                parser.error("add needs the files to keep")
            return recorded(config, "pre_upgrade", lambda: do_add(config, args.files))
        if args.command == "status":
            print(json.dumps(read_status(config), indent=2, sort_keys=True))
            return 0
        if args.command == "snapshots":
            return repositories(config, args.repository)[0].restic("snapshots", "--tag", TAG).returncode
        if args.command == "schedule":
            do_schedule(config)
        present = [repository.name for repository in repositories(config) if repository.exists()]
        if args.command == "present":
            print("\n".join(present))
            return 0
        for repository in repositories(config):  # init
            if repository.name in present:
                continue
            log(f"creating repository {repository.name}")
            repository.restic("init", stdout=subprocess.DEVNULL)
        return 0
    except Failure as failure:
        log(f"FAILED: {failure}")
        return 1
