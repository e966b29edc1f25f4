"""The batched facts (facts/paths.py) and the file operations deciding from them
(deploys/file_operations.py), table-driven: what the host answers goes in, the commands
it would be sent (or the no-op it reports) come out."""

import hashlib
import os
import subprocess
from io import StringIO

import pytest
from pyinfra.api import OperationError

from deploys import batched
from deploys import file_operations as file_ops
from deploys import venv_operations as venv_ops
from facts import paths

pytestmark = pytest.mark.unit

DIR = {"type": "directory", "user": "root", "group": "root", "mode": 755, "sha256": None}
CONTENT = "listen 80;\n"
SHA = hashlib.sha256(CONTENT.encode()).hexdigest()
FILE = {"type": "file", "user": "root", "group": "root", "mode": 644, "sha256": SHA}


# -- PathStates -------------------------------------------------------------------------------
def test_path_states_read_for_real(tmp_path):
    """The command run by a real shell: each kind of path, a checksum only where asked."""
    (tmp_path / "d").mkdir(mode=0o750)
    (tmp_path / "f f").write_text(CONTENT)
    os.chmod(tmp_path / "f f", 0o640)
    (tmp_path / "l").symlink_to(tmp_path / "f f")
    (tmp_path / "g").write_text("x")
    os.chmod(tmp_path / "g", 0o4604)
    (tmp_path / "big").write_bytes(b"x" * (1024 * 1024 + 1))
    os.chmod(tmp_path / "big", 0o644)
    asked = [str(tmp_path / name) for name in ("d", "f f", "l", "g", "missing", "big")]
    command = paths.PathStates().command(tuple(asked), hashed=(asked[1], asked[2], asked[5]))
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    found = paths.PathStates().process(output.splitlines())
    me = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True).stdout.strip()
    assert found == {
        asked[0]: {"type": "directory", "user": me, "group": group, "mode": 750, "sha256": None},
        asked[1]: {"type": "file", "user": me, "group": group, "mode": 640, "sha256": SHA},
        asked[2]: {"type": "link", "user": me, "group": group, "mode": 777, "sha256": None},
        asked[3]: {"type": "file", "user": me, "group": group, "mode": 4604, "sha256": None},
        asked[4]: None,
        asked[5]: {"type": "file", "user": me, "group": group, "mode": 644, "sha256": None},
    }


@pytest.mark.parametrize(("fact", "kwargs", "command"), [
    pytest.param(paths.PathStates, {"paths": ()}, "true", id="PathStates-none"),
    pytest.param(paths.VenvDistributions, {"venvs": ()}, "true", id="VenvDistributions-none"),
    pytest.param(paths.VenvDistributions, {"venvs": ("/opt/my venv",)},
                 "for v in '/opt/my venv'; do echo \"venv $v\"; "
                 "for d in \"$v\"/lib/python3*/site-packages/*.dist-info; do [ -d \"$d\" ] && "
                 "echo \"dist ${d##*/}\"; done; done; true", id="VenvDistributions"),
])
def test_command(fact, kwargs, command):
    assert fact().command(**kwargs) == command


def test_path_states_quotes_paths():
    assert paths.PathStates().command(("/etc/it's",)).endswith("; s '/etc/it'\"'\"'s' 0 1048576")


@pytest.mark.parametrize(("output", "value"), [
    pytest.param([], {}, id="nothing answered"),
    pytest.param(["- - - - - /a b"], {"/a b": None}, id="absent, a space in the path"),
    pytest.param(["p root root 600 - /run/fifo"],
                 {"/run/fifo": {"type": "other", "user": "root", "group": "root", "mode": 600, "sha256": None}},
                 id="neither file, directory nor link"),
    pytest.param(["d 1001 1001 2775 - /srv"],
                 {"/srv": {"type": "directory", "user": "1001", "group": "1001", "mode": 2775, "sha256": None}},
                 id="owners without names, setgid"),
    pytest.param(["garbage"], {}, id="a line it cannot read"),
])
def test_path_states_process(output, value):
    assert paths.PathStates().process(output) == value


@pytest.mark.parametrize(("output", "value"), [
    pytest.param(["venv /v", "dist Django-4.2.16.dist-info", "dist zeroc_ice-3.6.5.dist-info",
                  "dist omero_web-5.33.2.dist-info", "venv /w"],
                 {"/v": {"django": "4.2.16", "zeroc-ice": "3.6.5", "omero-web": "5.33.2"}, "/w": {}},
                 id="two venvs, one empty"),
    pytest.param(["dist orphan-1.0.dist-info"], {}, id="no venv named first"),
])
def test_venv_distributions_process(output, value):
    assert paths.VenvDistributions().process(output) == value


@pytest.mark.parametrize(("name", "normalised"), [
    ("Django", "django"), ("zeroc_ice", "zeroc-ice"), ("ruamel.yaml", "ruamel-yaml"), ("a__b", "a-b"),
])
def test_normalise(name, normalised):
    assert paths.normalise(name) == normalised


# -- asked once --------------------------------------------------------------------------------
def test_one_question_for_every_path_wanted(run_op):
    """Paths planned for a host are asked in one fact, once, while no command runs."""
    answers = {"PathStates": lambda paths, hashed: {"/a": DIR, "/b": DIR}}

    def both():
        batched.want_path("/a")
        batched.want_path("/b")
        yield from file_ops.directory._inner("/a", user="root", group="root", mode="755")
        yield from file_ops.directory._inner("/b", user="root", group="root", mode="755")

    run = run_op(type("op", (), {"_inner": staticmethod(both)}), answers)
    assert run.commands == []
    assert run.fact_calls == [("PathStates", {"paths": ("/a", "/b"), "hashed": ()})]


def test_asked_again_after_a_command(run_op, monkeypatch):
    answers = {"PathStates": lambda paths, hashed: {"/a": DIR}}

    def twice():
        yield from file_ops.directory._inner("/a", mode="755")
        monkeypatch.setitem(batched._changes, batched._key(), 1)  # what the callback counts
        yield from file_ops.directory._inner("/a", mode="755")

    run = run_op(type("op", (), {"_inner": staticmethod(twice)}), answers)
    assert len(run.fact_calls) == 2


class _Meta:
    """An operation's meta as far as the counter reads it."""

    def __init__(self, complete: bool, executed: bool):
        self.complete, self.executed = complete, executed

    def is_complete(self) -> bool:
        return self.complete


@pytest.mark.parametrize(("operations", "changes"), [
    pytest.param([("a", True, True), ("b", True, False), ("c", True, True)], 2, id="two of three ran commands"),
    pytest.param([("a", True, False), ("b", True, False)], 0, id="none"),
    pytest.param([("a", False, True), ("b", True, True)], 1, id="one still running (b inside a)"),
    pytest.param([("other host's", None, None), ("b", True, True)], 1, id="another host's"),
])
def test_change_counter(operations, changes):
    """The count that makes a batched answer stale: operations that ran commands, counted
    once complete (checked when the next one starts)."""
    from types import SimpleNamespace

    ops = {name: SimpleNamespace(operation_meta=_Meta(complete, executed))
           for name, complete, executed in operations if complete is not None}

    def get_op_data_for_host(host, op_hash):
        return ops[op_hash]

    state, host = SimpleNamespace(get_op_data_for_host=get_op_data_for_host), type("Host", (), {})()
    counter = batched._ChangeCounter()
    for name, _, _ in operations:
        counter.operation_host_start(state, host, name)
    counter.operation_host_start(state, host, "next")
    assert batched._changes.get(host, 0) == changes


# -- directory ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("found", "kwargs", "commands", "noops"), [
    pytest.param(None, {}, ["mkdir -p /srv/omero", "chmod 750 /srv/omero", "chown omero:omero /srv/omero"], [],
                 id="absent"),
    pytest.param({**DIR, "user": "omero", "group": "omero", "mode": 750}, {}, [],
                 ["directory /srv/omero already exists"], id="as wanted"),
    pytest.param({**DIR, "user": "omero", "group": "omero"}, {}, ["chmod 750 /srv/omero"], [], id="other mode"),
    pytest.param({**DIR, "mode": 750}, {}, ["chown omero:omero /srv/omero"], [], id="other owner"),
    pytest.param(DIR, {}, ["chmod 750 /srv/omero", "chown omero:omero /srv/omero"], [], id="both"),
    pytest.param(DIR, {"present": False}, ["rm -rf /srv/omero"], [], id="removed"),
    pytest.param(None, {"present": False}, [], ["directory /srv/omero does not exist"], id="already gone"),
])
def test_directory(run_op, found, kwargs, commands, noops):
    arguments = {"user": "omero", "group": "omero", "mode": "750", **kwargs}
    run = run_op(file_ops.directory, {"PathStates": {"/srv/omero": found}}, "/srv/omero", **arguments)
    assert run.commands == commands
    assert run.noops == noops


@pytest.mark.parametrize("kind", ["file", "link", "other"])
def test_directory_refuses_what_is_not_one(run_op, kind):
    with pytest.raises(OperationError, match="exists and is not a directory"):
        run_op(file_ops.directory, {"PathStates": {"/srv": {**DIR, "type": kind}}}, "/srv", mode="755")


def test_directory_quotes(run_op):
    run = run_op(file_ops.directory, {"PathStates": {}}, "/srv/my data", user="a b", group="c", mode="700")
    assert run.commands == ["mkdir -p '/srv/my data'", "chmod 700 '/srv/my data'", "chown 'a b:c' '/srv/my data'"]


# -- file ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("found", "kwargs", "commands", "noops"), [
    pytest.param(FILE, {"present": False}, ["rm -f /etc/x"], [], id="removed"),
    pytest.param(None, {"present": False}, [], ["file /etc/x does not exist"], id="already gone"),
    pytest.param(None, {"mode": "600"}, ["touch /etc/x", "chmod 600 /etc/x"], [], id="made"),
    pytest.param(FILE, {"mode": "644"}, [], ["file /etc/x already exists"], id="as wanted"),
    pytest.param(FILE, {"user": "omero"}, ["chown omero /etc/x"], [], id="other owner"),
    pytest.param(FILE, {"group": "omero"}, ["chgrp omero /etc/x"], [], id="other group alone"),
])
def test_file(run_op, found, kwargs, commands, noops):
    run = run_op(file_ops.file, {"PathStates": {"/etc/x": found, "/etc": DIR}}, "/etc/x", **kwargs)
    assert run.commands == commands
    assert run.noops == noops


def test_file_refuses_a_directory(run_op):
    with pytest.raises(OperationError, match="exists and is not a file"):
        run_op(file_ops.file, {"PathStates": {"/etc/x": DIR}}, "/etc/x", present=False)


# -- put -----------------------------------------------------------------------------------------
UPLOAD = ("upload", CONTENT, "/etc/nginx/x.conf", "/tmp/pyinfra-temp-for-_etc_nginx_x.conf")
WRITTEN = [UPLOAD, "chown root:root /etc/nginx/x.conf", "chmod 644 /etc/nginx/x.conf"]


@pytest.mark.parametrize(("found", "parent", "commands", "noops"), [
    pytest.param(None, DIR, WRITTEN, [], id="absent"),
    pytest.param(None, None, ["mkdir -p /etc/nginx", "chown root:root /etc/nginx", *WRITTEN], [],
                 id="its directory absent too"),
    pytest.param(None, {**DIR, "type": "link"}, WRITTEN, [], id="its directory a link"),
    pytest.param(FILE, DIR, [], ["file /etc/nginx/x.conf is already uploaded"], id="as wanted"),
    pytest.param({**FILE, "sha256": "0" * 64}, DIR, WRITTEN, [], id="other content"),
    pytest.param({**FILE, "type": "link", "sha256": None}, DIR, WRITTEN, [], id="a link: replaced"),
    pytest.param({**FILE, "mode": 600}, DIR, ["chmod 644 /etc/nginx/x.conf"], [], id="other mode"),
    pytest.param({**FILE, "mode": 600, "group": "adm"}, DIR,
                 ["chmod 644 /etc/nginx/x.conf", "chown root:root /etc/nginx/x.conf"], [], id="other mode, group"),
])
def test_put(run_op, found, parent, commands, noops):
    run = run_op(file_ops.put, {"PathStates": {"/etc/nginx/x.conf": found, "/etc/nginx": parent}},
                 StringIO(CONTENT), "/etc/nginx/x.conf", user="root", group="root", mode="644")
    assert run.commands == commands
    assert run.noops == noops


@pytest.mark.parametrize(("remote", "commands"), [(SHA, []), ("0" * 64, WRITTEN)], ids=["same", "other"])
def test_put_over_a_large_file_asks_its_checksum_alone(run_op, remote, commands):
    found = {**FILE, "sha256": None}  # a regular file the batched fact did not hash (over 1 MiB)
    run = run_op(file_ops.put, {"PathStates": {"/etc/nginx/x.conf": found, "/etc/nginx": DIR}, "Sha256File": remote},
                 StringIO(CONTENT), "/etc/nginx/x.conf", user="root", group="root", mode="644")
    assert run.commands == commands
    assert run.fact_calls[-1] == ("Sha256File", {"path": "/etc/nginx/x.conf"})


def test_put_a_local_file(run_op, tmp_path):
    local = tmp_path / "x.conf"
    local.write_text(CONTENT)
    run = run_op(file_ops.put, {"PathStates": {"/etc/nginx/x.conf": FILE, "/etc/nginx": DIR}}, str(local),
                 "/etc/nginx/x.conf", mode="644")
    assert run.commands == []


@pytest.mark.parametrize(("dest", "parent", "problem"), [
    pytest.param(DIR, DIR, "is a directory", id="dest a directory"),
    pytest.param(None, FILE, "exists and is not a directory", id="its directory a file"),
])
def test_put_refuses(run_op, dest, parent, problem):
    with pytest.raises(OperationError, match=problem):
        run_op(file_ops.put, {"PathStates": {"/etc/nginx/x.conf": dest, "/etc/nginx": parent}},
               StringIO(CONTENT), "/etc/nginx/x.conf")


# -- venv packages -------------------------------------------------------------------------------
VENV = "/opt/omero/web/venv3"
PIP = f"{VENV}/bin/pip"
INSTALLED = {"omero-web": "5.33.2", "zeroc-ice": "3.6.5", "gunicorn": "23.0.0"}


@pytest.mark.parametrize(("installed", "specs", "kwargs", "commands", "noops"), [
    pytest.param({}, ["omero-web==5.33.2", "gunicorn"], {}, [f"{PIP} install omero-web==5.33.2 gunicorn"], [],
                 id="fresh venv"),
    pytest.param(INSTALLED, ["omero-web==5.33.2", "gunicorn"], {}, [],
                 ["package omero-web is installed", "package gunicorn is installed"], id="all there"),
    pytest.param(INSTALLED, ["omero-web==5.34.0", "gunicorn"], {}, [f"{PIP} install omero-web==5.34.0"],
                 ["package gunicorn is installed"], id="another version"),
    pytest.param(INSTALLED, ["Zeroc_Ice==3.6.5"], {}, [], ["package zeroc-ice is installed"],
                 id="names compared normalised"),
    pytest.param({}, ["zeroc-ice==3.6.5"], {"extra_install_args": "--no-index --find-links /w"},
                 [f"{PIP} install --no-index --find-links /w zeroc-ice==3.6.5"], [], id="extra arguments"),
    pytest.param(INSTALLED, ["omero-web", "omero-parade"], {"present": False},
                 [f"{PIP} uninstall --yes omero-web"], ["package omero-parade is not installed"], id="uninstall"),
    pytest.param(INSTALLED, [], {"present": False}, [], [], id="nothing to uninstall"),
])
def test_venv_packages(run_op, installed, specs, kwargs, commands, noops):
    run = run_op(venv_ops.packages, {"VenvDistributions": {VENV: installed}}, specs, VENV, **kwargs)
    assert run.commands == commands
    assert run.noops == noops


def test_venv_packages_quotes_the_venv(run_op):
    run = run_op(venv_ops.packages, {"VenvDistributions": {}}, ["gunicorn"], "/opt/my venv")
    assert run.commands == ["'/opt/my venv'/bin/pip install gunicorn"]


@pytest.mark.parametrize(("spec", "parsed"), [
    ("omero-web==5.33.2", ("omero-web", "5.33.2")), ("gunicorn", ("gunicorn", None)),
    ("Zeroc_Ice==3.6.5", ("zeroc-ice", "3.6.5")), ("omero-py[extra]==5.23.0", ("omero-py", "5.23.0")),
])
def test_parse(spec, parsed):
    assert venv_ops.parse(spec) == parsed


@pytest.mark.parametrize("spec", ["omero-web>=5", "a b", "-r requirements.txt"])
def test_parse_refuses_what_it_cannot_compare(spec):
    with pytest.raises(ValueError, match="not a package name"):
        venv_ops.parse(spec)


@pytest.mark.parametrize(("found", "commands"), [
    pytest.param(None, ["python3 -m venv /opt/v"], id="absent"),
    pytest.param({**FILE, "type": "link"}, ["python3 -m venv /opt/v"], id="activate a link"),
    pytest.param(FILE, [], id="there"),
])
def test_venv(run_op, found, commands):
    run = run_op(venv_ops.venv, {"PathStates": {"/opt/v/bin/activate": found}}, "/opt/v", "python3")
    assert run.commands == commands


def test_a_fact_asked_once_until_a_command_runs(run_op, monkeypatch):
    """systemd's unit lists, asked by every systemd_running: once while nothing changes."""
    from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus

    def three():
        for _ in range(3):
            batched.fact(SystemdEnabled)
            batched.fact(SystemdStatus)
        monkeypatch.setitem(batched._changes, batched._key(), 1)
        batched.fact(SystemdEnabled)
        yield from ()

    run = run_op(type("op", (), {"_inner": staticmethod(three)}), {"SystemdEnabled": {}, "SystemdStatus": {}})
    assert [name for name, _ in run.fact_calls] == ["SystemdEnabled", "SystemdStatus", "SystemdEnabled"]
