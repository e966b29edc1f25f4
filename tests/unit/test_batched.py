"""The batched facts (facts/paths.py) and the file operations deciding from them
(deploys/file_operations.py), table-driven: what the host answers goes in, the commands
it would be sent (or the no-op it reports) come out."""

import hashlib
import os
import subprocess
from io import StringIO

import pytest
from pyinfra.api import Config, FactBase, FileUploadCommand, Inventory, OperationError, State, operation
from pyinfra.api.connect import connect_all
from pyinfra.api.operations import run_ops
from pyinfra.api.state import StateStage
from pyinfra.connectors.local import LocalConnector
from pyinfra.context import ctx_state
from pyinfra_cli.util import load_func

from deploys import batched
from deploys import file_operations as file_ops
from deploys import venv_operations as venv_ops
from facts import paths
from facts.omero import SystemdUnits

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
    fact = paths.PathStates()
    command = fact.command(tuple(asked), hashed=(asked[1], asked[2], asked[5]))
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    found = fact.process(output.splitlines())
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
    # Without a limit (the first question of a run), the large file is hashed too.
    command = fact.command((asked[5],), hashed=(asked[5],), limit=0)
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    assert fact.process(output.splitlines())[asked[5]]["sha256"] == hashlib.sha256(b"x" * (1024 * 1024 + 1)).hexdigest()


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
    assert paths.PathStates().command(("/etc/it's", "/a b"), hashed=("/a b",)) == (
        "find '/etc/it'\"'\"'s' '/a b' -maxdepth 0 -printf '%y %u %g %m %s %p\\n' 2>/dev/null; echo @@sha256; "
        "find '/a b' -maxdepth 0 -type f -size -1048577c -exec sha256sum {} + 2>/dev/null; true")


def test_path_states_refuses_relative_paths():
    with pytest.raises(ValueError, match="not absolute paths: \\['-delete'\\]"):
        paths.PathStates().command(("/etc", "-delete"))


SHA_A = "a" * 64


@pytest.mark.parametrize(("asked", "output", "value"), [
    pytest.param((), [], {}, id="nothing asked"),
    pytest.param(("/a b",), [], {"/a b": None}, id="absent, a space in the path"),
    pytest.param(("/run/fifo",), ["p root root 600 0 /run/fifo"],
                 {"/run/fifo": {"type": "other", "user": "root", "group": "root", "mode": 600, "sha256": None}},
                 id="neither file, directory nor link"),
    pytest.param(("/srv",), ["d 1001 1001 2775 4096 /srv"],
                 {"/srv": {"type": "directory", "user": "1001", "group": "1001", "mode": 2775, "sha256": None}},
                 id="owners without names, setgid"),
    pytest.param(("/x y",), ["f root root 644 3 /x y", "@@sha256", f"{SHA_A}  /x y"],
                 {"/x y": {**FILE, "sha256": SHA_A}}, id="hashed, a space in the path"),
    pytest.param(("/x",), ["f root root 644 3 /x", "@@sha256", f"{SHA_A}  /elsewhere", "short  /x"],
                 {"/x": {**FILE, "sha256": None}}, id="hashes of other paths or unreadable ignored"),
    pytest.param(("/x",), ["garbage", "f root root rw 3 /y"], {"/x": None}, id="lines it cannot read"),
])
def test_path_states_process(asked, output, value):
    fact = paths.PathStates()
    fact.command(asked)
    assert fact.process(output) == value


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
        # What the callback counts: an operation that ran commands, not saying where.
        monkeypatch.setitem(batched._changes, batched._key(), 1)
        monkeypatch.setitem(batched._unscoped, batched._key(), 1)
        yield from file_ops.directory._inner("/a", mode="755")

    run = run_op(type("op", (), {"_inner": staticmethod(twice)}), answers)
    assert len(run.fact_calls) == 2


@pytest.mark.parametrize(("change", "asked_again"), [
    pytest.param(("/b", True, True), False, id="another path"),
    pytest.param(("/a", False, False), True, id="the path itself"),
    pytest.param(("/a/b", True, False), True, id="made below it (with what is above)"),
    pytest.param(("/a/b", False, True), False, id="removed below it"),
    pytest.param(("/", False, True), True, id="removed with what is above"),
    pytest.param(("/", True, False), False, id="made above it"),
    pytest.param(("/ab", True, True), False, id="a path that begins the same"),
])
def test_a_change_elsewhere_keeps_the_answer(run_op, monkeypatch, change, asked_again):
    """After an operation that names the only path it changed (changes_only), what is at
    other paths is not asked again."""
    answers = {"PathStates": lambda paths, hashed: {"/a": DIR}}

    def twice():
        yield from file_ops.directory._inner("/a", mode="755")
        monkeypatch.setitem(batched._changes, batched._key(), 1)
        monkeypatch.setitem(batched._dirty, batched._key(), {change})
        yield from file_ops.directory._inner("/a", mode="755")
        # Asked again, the answer is good until the next change.
        yield from file_ops.directory._inner("/a", mode="755")

    run = run_op(type("op", (), {"_inner": staticmethod(twice)}), answers)
    assert len(run.fact_calls) == (2 if asked_again else 1)


@pytest.mark.parametrize(("op", "found", "args", "change"), [
    pytest.param(file_ops.directory, {}, ("/a/b",), [("/a/b", True, False)], id="a directory made"),
    pytest.param(file_ops.directory, {"/a/b": DIR}, ("/a/b",), [("/a/b", False, False)], id="a directory kept"),
    pytest.param(file_ops.directory, {"/a/b": DIR}, ("/a/b", False), [("/a/b", False, True)],
                 id="a directory removed"),
    pytest.param(file_ops.directories, {"/a": DIR}, ({"/a": "755", "/a/b": "700"},),
                 [("/a", False, False), ("/a/b", True, False)], id="directories, one made"),
    pytest.param(file_ops.file, {}, ("/a/b",), [("/a/b", True, False)], id="a file made"),
    pytest.param(file_ops.put, {"/a": DIR}, (StringIO("x"), "/a/b"), [("/a/b", False, False)],
                 id="a file put in a directory there"),
    pytest.param(file_ops.put, {}, (StringIO("x"), "/a/b"), [("/a/b", True, False)],
                 id="a file put, its directory made"),
])
def test_file_operations_name_what_they_change(run_op, op, found, args, change):
    def answer(paths, hashed=(), limit=None):
        return {path: found.get(path) for path in paths}

    run_op(op, {"PathStates": answer, "Sha256File": None}, *args)
    assert list(batched._scoped[batched._key()].values()) == [set(change)]


class _Meta:
    """An operation's meta as far as the counter reads it."""

    def __init__(self, complete: bool, executed: bool):
        self.complete, self.executed = complete, executed

    def is_complete(self) -> bool:
        return self.complete


SCOPED = ("/a", True, False)  # what an operation said it alone changed (changes_only)


@pytest.mark.parametrize(("operations", "changes", "unscoped"), [
    pytest.param([("a", True, True), ("b", True, False), ("c", True, True)], 2, 2, id="two of three ran commands"),
    pytest.param([("a", True, False), ("b", True, False)], 0, 0, id="none"),
    pytest.param([("a", False, True), ("b", True, True)], 1, 1, id="one still running (b inside a)"),
    pytest.param([("other host's", None, None), ("b", True, True)], 1, 1, id="another host's"),
    pytest.param([("a", True, True, SCOPED), ("b", True, True)], 2, 1, id="one said what it changed"),
    pytest.param([("a", True, False, SCOPED)], 0, 0, id="one said what it would change, and ran nothing"),
])
def test_change_counter(operations, changes, unscoped):
    """The counts that make a batched answer stale: operations that ran commands, counted
    once complete (checked when the next one starts); for paths, those that did not say
    which path alone they changed (the others' paths are kept apart)."""
    from types import SimpleNamespace

    ops = {name: SimpleNamespace(operation_meta=_Meta(complete, executed))
           for name, complete, executed, *_ in operations if complete is not None}

    def get_op_data_for_host(host, op_hash):
        return ops[op_hash]

    state, host = SimpleNamespace(get_op_data_for_host=get_op_data_for_host), type("Host", (), {})()
    counter = batched._ChangeCounter()
    for name, _, _, *scoped in operations:
        if scoped:
            batched._scoped.setdefault(host, {})[name] = {scoped[0]}
        counter.operation_host_start(state, host, name)
    counter.operation_host_start(state, host, "next")
    assert (batched._changes.get(host, 0), batched._unscoped.get(host, 0)) == (changes, unscoped)
    ran_scoped = any(executed and complete and scoped for _, complete, executed, *scoped in operations)
    assert batched._dirty.get(host, set()) == ({SCOPED} if ran_scoped else set())


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


@pytest.mark.parametrize("present", [True, False])
def test_directories_as_directory_of_each(run_op, present):
    found = {"PathStates": {"/a": DIR, "/a/b": None, "/c": {**DIR, "mode": 700}}}
    modes = {"/a": "755", "/a/b": "750", "/c": "755"}
    run = run_op(file_ops.directories, found, modes, present=present, user="omero", group="omero")
    each = [command for path, mode in modes.items()
            for command in run_op(file_ops.directory, found, path, present=present, user="omero", group="omero",
                                  mode=mode).commands]
    assert run.commands == each and len(each) >= 2


def test_directories_sent_as_one_command(run_op):
    sent = []

    def directories(*args, **kwargs):
        sent.extend(file_ops.directories._inner(*args, **kwargs))
        yield from ()

    run_op(type("op", (), {"_inner": staticmethod(directories)}), {"PathStates": {"/a": None, "/a/b": None}},
           {"/a": "755", "/a/b": "700"}, user="omero", group="omero")
    assert len(sent) == 1 and len(sent[0].commands) == 6


# -- put -----------------------------------------------------------------------------------------
TEMP = "/tmp/pyinfra-temp-for-_etc_nginx_x.conf"
# Uploaded as the user pyinfra connects as, then copied into place (as root, when it sudoes).
UPLOAD = [("upload", CONTENT, TEMP, None), f"cp {TEMP} /etc/nginx/x.conf", f"rm -f {TEMP}"]
WRITTEN = [*UPLOAD, "chown root:root /etc/nginx/x.conf", "chmod 644 /etc/nginx/x.conf"]


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


def test_put_uploads_as_the_connecting_user(run_op):
    """No sudo (or su, doas, dzdo) for the upload itself: the copy into place has it."""
    sent = []

    def put(*args, **kwargs):
        for command in file_ops.put._inner(*args, **kwargs):
            sent.append(command)
            yield command

    found = {"/etc/nginx/x.conf": None, "/etc/nginx": DIR}
    run_op(type("op", (), {"_inner": staticmethod(put)}), {"PathStates": found},
           StringIO(CONTENT), "/etc/nginx/x.conf", user="root", group="root", mode="644")
    upload = next(command for command in sent if isinstance(command, FileUploadCommand))
    assert upload.connector_arguments == {"_sudo": False, "_su_user": None, "_doas": False, "_dzdo": False}


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
    """The installed packages and the groups, asked by several operations: once while nothing changes."""
    from pyinfra.facts.deb import DebPackages
    from pyinfra.facts.server import Groups

    def three():
        for _ in range(3):
            batched.fact(DebPackages)
            batched.fact(Groups)
        monkeypatch.setitem(batched._changes, batched._key(), 1)
        batched.fact(DebPackages)
        yield from ()

    run = run_op(type("op", (), {"_inner": staticmethod(three)}), {"DebPackages": {}, "Groups": []})
    assert [name for name, _ in run.fact_calls] == ["DebPackages", "Groups", "DebPackages"]


def test_file_checksum_asks_the_checksum(run_op):
    """A path wanted without its checksum: asked again with it, in the same fact."""
    answers = {"PathStates": lambda paths, hashed: {"/a": {**FILE, "sha256": SHA if "/a" in hashed else None}}}

    def op():
        batched.want_path("/a")
        assert batched.path_state("/a")["sha256"] is None
        assert batched.file_checksum("/a") == SHA
        yield from ()

    run = run_op(type("op", (), {"_inner": staticmethod(op)}), answers)
    assert run.fact_calls == [("PathStates", {"paths": ("/a",), "hashed": ()}),
                              ("PathStates", {"paths": ("/a",), "hashed": ("/a",)})]


class _State:
    """A run's state as far as batched's callback registration reads it."""

    def __init__(self):
        self.handlers = []

    def add_callback_handler(self, handler):
        self.handlers.append(handler)


def test_one_change_counter_per_run():
    """Wanting facts registers the callback that counts changes, once per run."""
    first, second = _State(), _State()
    for state in (first, second):
        with ctx_state.use(state):
            batched._watch()
            batched._watch()
    assert [[type(handler) for handler in state.handlers] for state in (first, second)] == [
        [batched._ChangeCounter], [batched._ChangeCounter]]


def test_every_unit_wanted_asked_in_one_question(run_op, monkeypatch):
    """What systemd knows of the units the host's operations want: one SystemdUnits for them
    all, once while nothing changes; a unit not wanted before, or a change, asks again (for all)."""
    answers = {"SystemdUnits": lambda units: {unit: {"running": unit != "c.service"} for unit in units}}
    a, b, c = ((SystemdUnits, {"unit": f"{name}.service"}) for name in "abc")

    def operations():
        batched.want_unit("a.service")
        batched.want_unit("b.service")
        assert batched.facts(a, b, a) == [{"running": True}] * 3
        assert batched.facts(b) == [{"running": True}]
        assert batched.facts(c) == [{"running": False}]
        monkeypatch.setitem(batched._changes, batched._key(), 1)
        assert batched.facts(a, b) == [{"running": True}] * 2
        assert batched.facts(c) == [{"running": False}]
        yield from ()

    run = run_op(type("op", (), {"_inner": staticmethod(operations)}), answers)
    assert [arguments for name, arguments in run.fact_calls if name == "SystemdUnits"] == [
        {"units": ("a.service", "b.service")}, {"units": ("a.service", "b.service", "c.service")},
        {"units": ("a.service", "b.service", "c.service")}]


# -- Batch: several facts in one command -------------------------------------------------------
class _Lines(FactBase):
    """A fact answering whatever ``script`` prints, line by line."""

    @staticmethod
    def default():
        return "nothing"

    def command(self, script: str) -> str:
        return script

    def process(self, output):
        return list(output)


class _NeedsTool(_Lines):
    def requires_command(self, script: str, tool: str = "no-such-tool-here") -> str:
        return tool

    def command(self, script: str, tool: str = "no-such-tool-here") -> str:
        return script


def _batch(specs):
    fact = paths.Batch()
    command = fact.command(tuple(specs))
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    return fact.process(output.splitlines())


def test_batch_read_for_real(tmp_path):
    """Each fact's output, whatever its last line, reaches its own process; a failed one or
    one whose tool is missing has no answer (it is asked alone, with pyinfra's errors)."""
    (tmp_path / "f").write_text("x")
    found = _batch([
        (_Lines, (("script", "printf 'a\\nb\\n'"),), None),
        (_Lines, (("script", "printf 'no newline at the end'"),), None),
        (_Lines, (("script", "printf '\\nblank first\\n'"),), None),
        (_Lines, (("script", "true"),), None),
        (_Lines, (("script", "echo partial; exit 3"),), None),
        (_NeedsTool, (("script", "echo never"),), None),
        (_NeedsTool, (("script", "echo here"), ("tool", "sh")), None),
        (paths.PathStates, (("paths", (str(tmp_path / "f"), str(tmp_path / "gone"))),), None),
    ])
    assert found[0] == ["a", "b"]
    assert found[1] == ["no newline at the end"]
    assert found[2] == ["", "blank first"]
    assert found[3] == "nothing"  # no output: the fact's default, as pyinfra gives it
    assert 4 not in found and 5 not in found
    assert found[6] == ["here"]
    assert found[7][str(tmp_path / "f")]["type"] == "file" and found[7][str(tmp_path / "gone")] is None


def test_batch_runs_a_fact_as_its_user():
    command = paths.Batch().command(((_Lines, (("script", "id -un"),), "post gres"),))
    assert "runuser -u 'post gres' -- sh -c 'id -un'" in command


@pytest.mark.skipif(os.geteuid() != 0, reason="runuser needs root, as the deploy's facts run")
def test_batch_runs_a_fact_as_its_user_for_real():
    assert _batch([(_Lines, (("script", "id -un"),), "nobody")]) == {0: ["nobody"]}


# -- the host's first question asks everything wanted ------------------------------------------
def _in_op(run_op, answers, body):
    """``body()`` run as an operation's generator on the fake host, inside the operation."""

    def op():
        batched.host.in_op = True
        yield from body()

    return run_op(type("op", (), {"_inner": staticmethod(op)}), answers)


def test_first_question_in_an_operation_asks_everything_wanted(run_op):
    seen = []

    def batch(specs):
        seen.append(specs)
        return {0: {"/a": DIR}, 1: {"/v": {"django": "4.2"}}, 2: {"nginx.service": {"running": True}},
                3: ["answered"]}

    def body():
        batched.want_path("/a", checksum=True)
        batched.want_venv("/v")
        batched.want_unit("nginx.service")
        batched.want(_Lines, {"script": "psql"}, "postgres")
        assert batched.path_state("/a") == DIR
        assert batched.venv_distributions("/v") == {"django": "4.2"}
        assert batched.facts((SystemdUnits, {"unit": "nginx.service"})) == [{"running": True}]
        assert batched.fact(_Lines, script="psql") == ["answered"]
        yield from ()

    run = _in_op(run_op, {"Batch": batch}, body)
    assert [name for name, _ in run.fact_calls] == ["Batch"]
    # Every wanted path with its checksum, of any size (the first question of a run).
    assert seen == [((paths.PathStates, (("hashed", ("/a",)), ("limit", 0), ("paths", ("/a",))), None),
                     (paths.VenvDistributions, (("venvs", ("/v",)),), None),
                     (SystemdUnits, (("units", ("nginx.service",)),), None),
                     (_Lines, (("script", "psql"),), "postgres"))]


def test_a_fact_the_batch_did_not_answer_is_asked_alone(run_op):
    def body():
        batched.want(_Lines, {"script": "x"})
        assert batched.fact(_Lines, script="x") == ["alone"]
        yield from ()

    run = _in_op(run_op, {"Batch": {}, "_Lines": ["alone"]}, body)
    assert [name for name, _ in run.fact_calls] == ["Batch", "_Lines"]


def test_once_the_host_changed_each_fact_is_asked_alone(run_op, monkeypatch):
    def body():
        batched.want(_Lines, {"script": "x"})
        monkeypatch.setitem(batched._changes, batched._key(), 1)
        assert batched.fact(_Lines, script="x") == ["alone"]
        yield from ()

    run = _in_op(run_op, {"_Lines": ["alone"]}, body)
    assert [name for name, _ in run.fact_calls] == ["_Lines"]


def test_no_batch_outside_an_operation(run_op):
    """While the deploy file is planned, a question is asked alone (the wants are not all known)."""

    def op():
        batched.want(_Lines, {"script": "x"})
        assert batched.fact(_Lines, script="x") == ["alone"]
        yield from ()

    run = run_op(type("op", (), {"_inner": staticmethod(op)}), {"_Lines": ["alone"]})
    assert [name for name, _ in run.fact_calls] == ["_Lines"]


def test_ask_answers_together_and_keeps_the_answers(run_op):
    def op():
        assert batched.ask((_Lines, {"script": "a"}), (_NeedsTool, {"script": "b"})) == [["a"], ["b alone"]]
        assert batched.fact(_Lines, script="a") == ["a"]  # kept
        # What the deploy branches on is asked anew by each ask(), known or not.
        assert batched.ask((_Lines, {"script": "a"})) == [["a"]]
        yield from ()

    run = run_op(type("op", (), {"_inner": staticmethod(op)}), {"Batch": {0: ["a"]}, "_NeedsTool": ["b alone"]})
    assert [name for name, _ in run.fact_calls] == ["Batch", "_NeedsTool", "Batch"]


def test_facts_asks_only_what_is_not_known_together(run_op, monkeypatch):
    """facts(): answers kept since the last command are used; the rest asked in one Batch
    (one the batch could not answer, alone)."""
    asked = []

    def batch(specs):
        asked.append([arguments for _, arguments, _ in specs])
        return {index: [dict(arguments)["script"]] for index, (cls, arguments, _) in enumerate(specs)
                if cls is _Lines}

    def op():
        batched.fact(_Lines, script="a")
        monkeypatch.setitem(batched._changes, batched._key(), 1)  # a command ran
        batched.fact(_Lines, script="b")
        found = batched.facts((_Lines, {"script": "b"}), (_Lines, {"script": "c"}), (_NeedsTool, {"script": "d"}),
                              (_Lines, {"script": "e"}))
        assert found == [["b alone"], ["c"], ["d alone"], ["e"]]
        yield from ()

    run = run_op(type("op", (), {"_inner": staticmethod(op)}),
                 {"Batch": lambda specs: batch(specs), "_Lines": ["b alone"], "_NeedsTool": ["d alone"]})
    assert [name for name, _ in run.fact_calls] == ["_Lines", "_Lines", "Batch", "_NeedsTool"]
    assert asked == [[(("script", "c"),), (("script", "d"),), (("script", "e"),)]]


def test_asks_wants_what_the_operation_names_when_planned(monkeypatch):
    wanted = []
    monkeypatch.setattr(batched, "want", lambda cls, arguments, *user: wanted.append((cls, arguments, *user)))
    monkeypatch.setattr(batched, "want_path", lambda path: wanted.append(path))

    @batched.asks(lambda unit, **_: [(_Lines, {"script": unit}, "root"), (paths.PathStates, {"path": "/p"})])
    def planned(**kwargs):
        return kwargs

    assert planned(unit="nginx", name="Start nginx") == {"unit": "nginx", "name": "Start nginx"}
    assert wanted == [(_Lines, {"script": "nginx"}, "root"), "/p"]


# -- link_absent ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("found", "commands", "noops"), [
    pytest.param({**DIR, "type": "link"}, ["rm -f /etc/nginx/sites-enabled/default"], [], id="a link"),
    pytest.param(None, [], ["link /etc/nginx/sites-enabled/default does not exist"], id="none"),
])
def test_link_absent(run_op, found, commands, noops):
    run = run_op(file_ops.link_absent, {"PathStates": {"/etc/nginx/sites-enabled/default": found}},
                 "/etc/nginx/sites-enabled/default")
    assert run.commands == commands
    assert run.noops == noops


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_link_absent_refuses_what_is_not_one(run_op, kind):
    with pytest.raises(OperationError, match="exists and is not a link"):
        run_op(file_ops.link_absent, {"PathStates": {"/etc/x": {**DIR, "type": kind}}}, "/etc/x")


# -- prefetch: the batch asked once the host is planned -------------------------------------------
@operation()
def _look(paths_asked: list, seen: list):
    seen.extend(batched.path_state(path) for path in paths_asked)
    yield from ()


def _run_on_this_machine(monkeypatch, plan, *, detect_changes=False, fail_prefetch=False) -> dict:
    """``plan()`` planned on pyinfra's @local host (this machine, for real), its changes
    detected as the CLI does without ``-y`` if asked, then run: how many Batch commands the
    host was sent in each stage."""
    state = State(Inventory((["@local"], {})), Config(), check_for_changes=detect_changes)
    sent: dict[StateStage, list] = {StateStage.Prepare: [], StateStage.Execute: []}
    real = LocalConnector.run_shell_command

    def recorded(self, command, **kwargs):
        raw = command.get_raw_value() if hasattr(command, "get_raw_value") else command
        stage = state.current_stage
        status, output = real(self, command, **kwargs)
        if "@@batch-fact" in raw:
            sent[stage].append(raw)
            if fail_prefetch and stage is StateStage.Prepare:
                return False, output  # answered, then failed: not trusted
        return status, output

    monkeypatch.setattr(LocalConnector, "run_shell_command", recorded)
    with ctx_state.use(state):
        connect_all(state)
        state.set_stage(StateStage.Prepare)
        load_func(state, plan)
        (local,) = state.inventory
        state.set_stage(StateStage.Execute)
        run_ops(state)
        assert state.get_results_for_host(local).error_ops == 0
    return {stage.name: len(commands) for stage, commands in sent.items()}


@pytest.mark.parametrize("detect_changes, fail_prefetch, sent", [
    pytest.param(False, False, {"Prepare": 1, "Execute": 0}, id="-y: asked while planning, used by the run"),
    # Each operation is run when planned, to show what would change: asked then, and again
    # after the prompt; no prefetch.
    pytest.param(True, False, {"Prepare": 1, "Execute": 1}, id="without -y: no prefetch"),
    pytest.param(False, True, {"Prepare": 1, "Execute": 1}, id="a prefetch that failed is asked again"),
])
def test_prefetch(tmp_path, monkeypatch, detect_changes, fail_prefetch, sent):
    (tmp_path / "a").write_text(CONTENT)
    seen = []

    def plan():
        batched.want_path(str(tmp_path / "a"), checksum=True)
        _look(paths_asked=[str(tmp_path / "a")], seen=seen)
        batched.prefetch()

    assert _run_on_this_machine(monkeypatch, plan, detect_changes=detect_changes,
                                fail_prefetch=fail_prefetch) == sent
    assert [(found["type"], found["sha256"]) for found in seen] == [("file", SHA)] * (1 + detect_changes)


def test_prefetch_answers_only_what_it_asked(tmp_path, monkeypatch):
    """A path first asked when the run asks it (not wanted when planned) is asked then,
    not taken for absent because the prefetch did not ask it."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").write_text(CONTENT)
    seen = []

    def plan():
        batched.want_path(str(tmp_path / "a"))
        _look(paths_asked=[str(tmp_path / "b"), str(tmp_path / "a")], seen=seen)
        batched.prefetch()

    assert _run_on_this_machine(monkeypatch, plan) == {"Prepare": 1, "Execute": 0}
    assert [found["type"] for found in seen] == ["file", "directory"]
