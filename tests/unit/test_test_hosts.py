"""The test harness's apt archive seeding: a host's directory gets every .deb its suite's
other hosts hold, as hard links, and nothing else."""

import pytest

from tests.host.testhosts import _seeded

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("others, own, expected", [
    ({}, {}, set()),  # the first host of a cold run
    ({"a": ["x_1.deb", "y_2.deb"]}, {}, {"x_1.deb", "y_2.deb"}),
    ({"a": ["x_1.deb"], "b": ["x_1.deb", "z_3.deb"]}, {"x_1.deb": b"own"}, {"x_1.deb", "z_3.deb"}),
    ({"a": ["x_1.deb", "lock", "partial/w_4.deb"]}, {}, {"x_1.deb"}),  # whole .debs only
])
def test_archives_seeded_from_the_other_hosts(tmp_path, others, own, expected):
    suite = tmp_path / "bookworm"
    for host, names in others.items():
        for name in names:
            path = suite / host / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"{host}/{name}".encode())
    mine = suite / "mine"
    mine.mkdir(parents=True)
    for name, content in own.items():
        (mine / name).write_bytes(content)
    assert _seeded(mine) == mine
    assert {path.name for path in mine.glob("*.deb")} == expected
    for name in expected - set(own):
        linked = mine / name
        assert linked.stat().st_nlink > 1 and any(linked.samefile(other) for other in suite.glob(f"*/{name}")
                                                  if other.parent != mine)
    for name, content in own.items():
        assert (mine / name).read_bytes() == content  # what the host has is kept
