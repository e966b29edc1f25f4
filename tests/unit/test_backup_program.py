"""The parts of files/omero-backup (the program installed on the hosts) that need no host:
schedules, restic's times, the manifest's form, and the SQL it runs."""

import datetime
from importlib.machinery import SourceFileLoader
from pathlib import Path

import pytest

from deploys.grammar import timer_lines

pytestmark = pytest.mark.unit

PROGRAM = SourceFileLoader("omero_backup_program",
                           str(Path(__file__).resolve().parents[2] / "files" / "omero-backup")).load_module()
WEDNESDAY = datetime.datetime(2026, 11, 25, 12, 0)


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
    assert PROGRAM.next_run(schedule, after) == due
    # The same grammar as the deploy's (the systemd side).
    assert timer_lines(schedule)


@pytest.mark.parametrize("text, expected", [
    ("2026-11-25T21:33:18.123456789Z", datetime.datetime(2026, 11, 25, 21, 33, 18, tzinfo=datetime.timezone.utc)),
    ("2026-11-25T22:33:18+01:00", datetime.datetime(2026, 11, 25, 21, 33, 18, tzinfo=datetime.timezone.utc)),
    ("2026-11-25T21:33:18Z", datetime.datetime(2026, 11, 25, 21, 33, 18, tzinfo=datetime.timezone.utc)),
])
def test_restic_times(text, expected):
    assert PROGRAM.parse_time(text) == expected.timestamp()


def test_manifest_parsed_from_psql_output():
    text = "public.samples\t200000\t123456789012345678901\npublic.empty\t0\t0\n\nlarge objects\t6\t42\n"
    assert PROGRAM.parse_manifest(text) == {"public.samples": (200000, "123456789012345678901"),
                                            "public.empty": (0, "0"), "large objects": (6, "42")}


def test_manifest_sql_hashes_whole_rows_in_any_order():
    sql = PROGRAM.MANIFEST_SQL
    # Quoted once for format()'s literal, so the generated query reads ROW(r.*) of each table.
    assert "sum((''x'' || substr(md5(ROW(r.*)::text), 1, 16))::bit(64)::bigint::numeric)" in sql
    assert "FROM %I.%I r'" in sql and "\\gexec" in sql
    assert "md5(lo_get(oid))" in sql and "FROM pg_largeobject_metadata" in sql
