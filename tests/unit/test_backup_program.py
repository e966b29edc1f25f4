"""The parts of files/omero_backup (the program installed on the hosts) that need no host:
schedules, restic's times, the manifest's form, and the SQL it runs."""

import datetime
import os
import re
from pathlib import Path

import pytest

from deploys.backup import BACKUP_LIB_DIR
from deploys.grammar import timer_lines
from files.omero_backup import backup, cli, drill, restic, restore, staging

pytestmark = pytest.mark.unit

FILES = Path(__file__).resolve().parents[2] / "files"


WEDNESDAY = datetime.datetime(2026, 11, 25, 12, 0)


def test_the_launcher_imports_the_modules_from_where_the_deploy_installs_them():
    launcher = (FILES / "omero-backup").read_text()
    assert f'sys.path.insert(0, "{BACKUP_LIB_DIR}")' in launcher
    assert launcher.index("sys.path.insert") < launcher.index("from omero_backup.cli import main")


def test_the_command_line_is_the_one_program_s(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    assert "{run,check,add,status,snapshots,schedule,init,present,restic}" in capsys.readouterr().out


@pytest.mark.parametrize("schedule, after, due", [
    ("02:30", WEDNESDAY, datetime.datetime(2026, 11, 26, 2, 30)),
    ("13:05", WEDNESDAY, datetime.datetime(2026, 11, 25, 13, 5)),
    ("12:00", WEDNESDAY, datetime.datetime(2026, 11, 26, 12, 0)),  # due now: the next one
    ("Sun 04:30", WEDNESDAY, datetime.datetime(2026, 11, 29, 4, 30)),
    ("Wed 11:00", WEDNESDAY, datetime.datetime(2026, 12, 2, 11, 0)),
    ("Wed 13:00", WEDNESDAY, datetime.datetime(2026, 11, 25, 13, 0)),
    ("every 30m", WEDNESDAY, datetime.datetime(2026, 11, 25, 12, 30)),
    ("every 6h", WEDNESDAY, datetime.datetime(2026, 11, 25, 18, 0)),
])
def test_supervisord_schedule_matches_the_systemd_timer(schedule, after, due):
    assert drill.next_run(schedule, after) == due
    # The same grammar as the deploy's (the systemd side).
    assert timer_lines(schedule)


@pytest.mark.parametrize("text, expected", [
    ("2026-11-25T21:33:18.123456789Z", datetime.datetime(2026, 11, 25, 21, 33, 18, tzinfo=datetime.timezone.utc)),
    ("2026-11-25T22:33:18+01:00", datetime.datetime(2026, 11, 25, 21, 33, 18, tzinfo=datetime.timezone.utc)),
    ("2026-11-25T21:33:18Z", datetime.datetime(2026, 11, 25, 21, 33, 18, tzinfo=datetime.timezone.utc)),
])
def test_restic_times(text, expected):
    assert drill.parse_time(text) == expected.timestamp()


def test_manifest_parsed_from_psql_output():
    text = "public.samples\t200000\t123456789012345678901\npublic.empty\t0\t0\n\nlarge objects\t6\t42\n"
    assert backup.parse_manifest(text) == {"public.samples": (200000, "123456789012345678901"),
                                            "public.empty": (0, "0"), "large objects": (6, "42")}


def test_manifest_sql_hashes_whole_rows_in_any_order():
    sql = restic.MANIFEST_SQL
    # Quoted once for format()'s literal, so the generated query reads ROW(r.*) of each table.
    assert "sum((''x'' || substr(md5(ROW(r.*)::text), 1, 16))::bit(64)::bigint::numeric)" in sql
    assert "FROM %I.%I r'" in sql and "\\gexec" in sql
    assert "md5(lo_get(oid))" in sql and "FROM pg_largeobject_metadata" in sql


def make_tree(root: Path, entries: dict) -> None:
    """``entries``: relative path -> file content (str), None for a directory, ("link", target)."""
    for relative, content in entries.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir()
        elif isinstance(content, tuple):
            path.symlink_to(content[1])
        else:
            path.write_text(content)


def listing(root: Path) -> dict:
    return {relative: (kind, (root / relative).read_text() if kind == "file" else
                       str((root / relative).readlink()) if kind == "symlink" else None)
            for relative, kind in restore.tree_listing(str(root)).items()}


LIVE = {"Files/a": "live a", "Files/was-a-dir": "a file now", "ManagedRepository/rel": ("link", "../Files/a"),
        "ManagedRepository/abs": "was a link", "Thumbnails/t": "cache", "only-live": "x"}
NEW = {"Files/a": "restored a", "Files/was-a-dir/inner": "in", "ManagedRepository/rel": ("link", "../Files/a"),
       "ManagedRepository/abs": ("link", "/OMERO/Files/a"), "ManagedRepository/dangling": ("link", "/nowhere"),
       "Pixels": None}


@pytest.fixture
def opened():
    """Directories opened as the program opens them; closed after the test."""
    fds = []

    def open_all(*paths):
        fds.extend(os.open(path, staging.DIRECTORY) for path in paths)
        return fds[-len(paths):]
    yield open_all
    for fd in fds:
        os.close(fd)


@pytest.mark.parametrize("done", range(len(LIVE) + len(NEW)))
def test_swap_interrupted_after_any_rename_is_undone_exactly(tmp_path, opened, done):
    data, tree, old = tmp_path / "OMERO", tmp_path / "staging" / "new", tmp_path / "staging" / "old"
    make_tree(data, LIVE)
    make_tree(tree, NEW)
    old.mkdir()
    before, staged = listing(data), listing(tree)
    live_names, new_names = sorted(p.name for p in data.iterdir()), sorted(p.name for p in tree.iterdir())
    fds = opened(data, tree, old)
    for step in staging.swap_steps(*fds, live_names, new_names)[:done]:
        staging.rename(step)
    staging.unswap(*fds, live_names, new_names)
    assert listing(data) == before and listing(tree) == staged and not list(old.iterdir())
    # Undoing twice (a rollback itself interrupted, then run again) changes nothing more.
    staging.unswap(*fds, live_names, new_names)
    assert listing(data) == before


def test_swap_puts_exactly_the_restored_tree_in_place(tmp_path, opened):
    data, tree, old = tmp_path / "OMERO", tmp_path / "new", tmp_path / "old"
    make_tree(data, LIVE)
    make_tree(tree, NEW)
    old.mkdir()
    staged = listing(tree)
    for step in staging.swap_steps(*opened(data, tree, old), sorted(p.name for p in data.iterdir()),
                                   sorted(p.name for p in tree.iterdir())):
        staging.rename(step)
    assert listing(data) == staged


# The OMERO.server account (uid 65534 here) owns the data directory: it can rename the staging
# area away and put anything in its place. Root (these tests) must never write, rename or remove
# through what it put there.
ACCOUNT = 65534
VICTIM = {"secret": "root's", "new/OMERO/Files/a": "lure", "old/keep": "lure"}


def restore_setup(tmp_path):
    """A data directory owned by the account with a live site, a staging area made as a restore
    makes it (recorded in the journal), and a restored tree in it."""
    data, state = tmp_path / "OMERO", tmp_path / "state"
    make_tree(data, LIVE)
    os.chown(data, ACCOUNT, ACCOUNT)
    state.mkdir()
    config = {"data_dir": str(data), "state_dir": str(state), "services": {"stop": [], "start": []}}
    journal = {"phase": "staging", "snapshot": "0123abcd"}
    with staging.Staging(str(data)) as area:
        restore.prepare_staging(config, area, journal)
    tree = data / restic.STAGING / "new" / str(data).lstrip("/")
    make_tree(tree, NEW)
    os.chown(tree, 1234, 1234)
    return data, config, journal


def plant(path, what, victim):
    """What the account (or a stray root) puts at ``path``."""
    if what == "link":
        path.symlink_to(victim)
    elif what == "account's directory":
        path.mkdir(0o700)
        os.chown(path, ACCOUNT, ACCOUNT)
    elif what == "open directory":
        path.mkdir()
        path.chmod(0o755)
    elif what == "other root directory":
        path.mkdir(0o700)
    else:
        path.write_text("a file")


@pytest.mark.parametrize("what", ["link", "account's directory", "open directory", "file"])
def test_staging_refuses_what_is_planted_before_it(tmp_path, what):
    data, victim, state = tmp_path / "OMERO", tmp_path / "victim", tmp_path / "state"
    make_tree(data, LIVE)
    make_tree(victim, VICTIM)
    state.mkdir()
    plant(data / restic.STAGING, what, victim)
    before, victim_before = listing(data), listing(victim)
    config = {"data_dir": str(data), "state_dir": str(state)}
    with pytest.raises(restic.Failure, match=re.escape(str(data / restic.STAGING))), \
            staging.Staging(str(data)) as area:
        restore.prepare_staging(config, area, {"phase": "staging"})
    assert listing(data) == before and listing(victim) == victim_before
    assert not (state / "restore-journal.json").exists()


def test_staging_left_by_root_without_a_journal_is_made_anew(tmp_path):
    data, state = tmp_path / "OMERO", tmp_path / "state"
    make_tree(data, {f"{restic.STAGING}/new/OMERO/Files/a": "half restored", "Files/a": "live"})
    (data / restic.STAGING).chmod(0o700)
    state.mkdir()
    journal = {"phase": "staging"}
    with staging.Staging(str(data)) as area:
        restore.prepare_staging({"data_dir": str(data), "state_dir": str(state)}, area, journal)
    info = os.lstat(data / restic.STAGING)
    assert journal["files"]["staging"] == [info.st_dev, info.st_ino]
    assert sorted(p.name for p in (data / restic.STAGING).iterdir()) == ["new", "old"]
    assert not list((data / restic.STAGING / "new").iterdir())


def test_restore_staged_swapped_and_rolled_back_through_descriptors(tmp_path):
    data, config, journal = restore_setup(tmp_path)
    before = listing(data)
    staged = listing(data / restic.STAGING / "new" / str(data).lstrip("/"))
    restore.swap_files(config, journal)
    assert {path: entry for path, entry in listing(data).items() if not path.startswith(restic.STAGING)} \
        == staged
    assert os.lstat(data).st_uid == 1234  # the restored tree's owner
    staging.roll_back(config, journal)
    assert listing(data) == {path: entry for path, entry in before.items() if not path.startswith(restic.STAGING)}
    assert os.lstat(data).st_uid == ACCOUNT


@pytest.mark.parametrize("step", ["swap", "roll back", "roll back after the swap", "clean up"])
@pytest.mark.parametrize("what", ["link", "account's directory", "other root directory"])
def test_staging_swapped_by_the_account_is_refused(tmp_path, step, what):
    data, config, journal = restore_setup(tmp_path)
    if step == "roll back after the swap":
        restore.swap_files(config, journal)
    victim = tmp_path / "victim"
    make_tree(victim, VICTIM)
    # The account, between two steps of the restore: the staging area renamed away, another thing in its place.
    (data / restic.STAGING).rename(data / "moved")
    plant(data / restic.STAGING, what, victim)
    before, victim_before = listing(data), listing(victim)
    action = {"swap": restore.swap_files, "clean up": staging.clean_up}.get(step, staging.roll_back)
    with pytest.raises(restic.Failure, match=re.escape(str(data / restic.STAGING))):
        action(config, journal)
    assert listing(data) == before and listing(victim) == victim_before
    assert os.lstat(victim).st_uid == 0 and (tmp_path / "state" / "restore-journal.json").exists()


@pytest.mark.parametrize("layout, refused", [
    ("plain", None),
    ("sticky", None),  # like /tmp: only root may rename root's entries
    ("writable", "shared"),
    ("account's", "shared"),
    ("link", "shared/OMERO"),
])
def test_data_directory_reached_only_through_roots_directories(tmp_path, layout, refused):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod({"sticky": 0o1777, "writable": 0o777}.get(layout, 0o755))
    if layout == "account's":
        os.chown(shared, ACCOUNT, ACCOUNT)
    if layout == "link":
        (tmp_path / "elsewhere").mkdir()
        (shared / "OMERO").symlink_to(tmp_path / "elsewhere")
    if refused:
        with pytest.raises(restic.Failure, match=re.escape(str(tmp_path / refused))):
            staging.open_data_dir(str(shared / "OMERO"))
        assert not (tmp_path / "elsewhere").exists() or not list((tmp_path / "elsewhere").iterdir())
    else:
        fd = staging.open_data_dir(str(shared / "OMERO"))  # made when missing
        assert os.path.samestat(os.fstat(fd), os.lstat(shared / "OMERO"))
        os.close(fd)


@pytest.mark.parametrize("link, target, outside", [
    ("ManagedRepository/u/rel", "../../../imports/a.tif", True),
    ("ManagedRepository/u/abs", "{tmp}/imports/a.tif", True),
    ("ManagedRepository/u/dir", "{tmp}/imports", True),
    ("ManagedRepository/u/inside", "../../Files/f", False),
    ("ManagedRepository/u/inside-abs", "{tmp}/OMERO/Files/f", False),
    ("ManagedRepository/u/dangling", "{tmp}/gone.tif", True),
    # A sibling whose name starts like the data directory's is outside it.
    ("ManagedRepository/u/prefix", "{tmp}/OMERO-other/f", True),
    ("Thumbnails/cached", "{tmp}/imports/a.tif", False),  # caches are not backed up at all
])
def test_links_pointing_outside_the_data_directory(tmp_path, link, target, outside):
    make_tree(tmp_path, {"imports/a.tif": "pixels", "OMERO/Files/f": "f", "OMERO-other/f": "o",
                         f"OMERO/{link}": ("link", target.format(tmp=tmp_path))})
    found = backup.outside_links(str(tmp_path / "OMERO"), [str(tmp_path / "OMERO" / "Thumbnails")])
    assert [entry[0] for entry in found] == ([str(tmp_path / "OMERO" / link)] if outside else [])


@pytest.mark.parametrize("enabled, readable, chosen, why", [
    (True, True, ["{tmp}/imports"], ["target missing", "holds the data directory"]),
    (True, False, [], ["target missing", "not readable", "not readable", "holds the data directory"]),
    (False, True, [], ["target missing", "omero_backup_link_targets is off", "omero_backup_link_targets is off",
                       "holds the data directory"]),
])
def test_link_targets_backed_up_or_named(tmp_path, enabled, readable, chosen, why):
    make_tree(tmp_path, {"imports/a.tif": "pixels"})
    links = [("/OMERO/dangling", str(tmp_path / "gone")), ("/OMERO/a", str(tmp_path / "imports" / "a.tif")),
             ("/OMERO/dir", str(tmp_path / "imports")), ("/OMERO/root", "/")]
    targets, missed = backup.link_targets(links, enabled, "/OMERO", readable=lambda path: readable)
    # A target inside another chosen one is backed up with it.
    assert targets == [path.format(tmp=tmp_path) for path in chosen]
    assert [entry[2] for entry in missed] == why


def test_snapshot_listing_against_the_restored_tree():
    output = "\n".join([
        '{"time":"2026-12-03T22:00:00Z","paths":["/OMERO"],"struct_type":"snapshot"}',
        '{"name":"OMERO","type":"dir","path":"/OMERO","struct_type":"node"}',
        '{"name":"Files","type":"dir","path":"/OMERO/Files","struct_type":"node"}',
        '{"name":"a","type":"file","path":"/OMERO/Files/a","struct_type":"node"}',
        '{"name":"l","type":"symlink","path":"/OMERO/Files/l","struct_type":"node"}',
        '{"name":"p","type":"fifo","path":"/OMERO/Files/p","struct_type":"node"}',
        '{"name":"dump","type":"dir","path":"/var/lib/omero-backup/dump","struct_type":"node"}',
        '{"name":"OMERO-other","type":"dir","path":"/OMERO-other","struct_type":"node"}',
    ])
    expected = restore.snapshot_listing(output, "/OMERO")
    assert expected == {"Files": "dir", "Files/a": "file", "Files/l": "symlink", "Files/p": "other"}
    assert restore.listing_differences(expected, expected) == []
    found = {**expected, "Files/l": "file", "Files/extra": "file"}
    del found["Files/a"]
    assert restore.listing_differences(expected, found) == [
        "Files/a: file in the snapshot, absent restored", "Files/extra: absent in the snapshot, file restored",
        "Files/l: symlink in the snapshot, file restored"]
