"""The image's entrypoint: the state's lock, the site's configuration checked, the
services' homes, and OMERO.server's state prepared (no server runs: that needs the
server's zip; tests/host/test_image.py runs it when given one). The entrypoint is loaded
from a copy beside a manifest of a temporary state directory, as the image ships it, with
root as every service's user. The watch (supervisord's event listener) is loaded as the
image ships it too."""

import errno
import fcntl
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from deploys import services
from omero_image.build import image_settings

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.unit


@pytest.fixture
def entrypoint(tmp_path):
    lib, state, server_etc = tmp_path / "lib", tmp_path / "state", tmp_path / "server-etc"
    (server_etc / "grid").mkdir(parents=True)
    (server_etc / "grid" / "templates.xml").write_text("<icegrid/>\n")
    lib.mkdir()
    for name in ("entrypoint.py", "omero_start_state.py", "omero_start_services.py"):
        shutil.copy(ROOT / "omero_image" / name, lib)
    shutil.copy(ROOT / "deploys" / "scram.py", lib / "omero_scram.py")
    shutil.copy(ROOT / "deploys" / "passwords.py", lib / "omero_passwords.py")
    shutil.copy(ROOT / "deploys" / "server_steps.py", lib / "omero_server_steps.py")
    shutil.copy(ROOT / "deploys" / "container.py", lib / "omero_container.py")
    (lib / "image.json").write_text(json.dumps({
        "state": str(state), "server": True, "server_user": "root", "server_etc": str(server_etc),
        "db_name": "omero", "db_user": "omero", "web_workers": 3, "web_bind_host": "127.0.0.1",
        "nginx_user": "root", "nginx_site": "/etc/nginx/conf.d/omero-web.conf",
        "supervisor_programs": "/etc/supervisor/conf.d",
        "run_as": {program: "root" for program in ("postgresql", "nginx", "omero-web", "omero-server")},
    }))
    # The modules beside it read this test's manifest when imported: imported afresh.
    for name in ("omero_start_state", "omero_start_services"):
        sys.modules.pop(name, None)
    spec = importlib.util.spec_from_file_location("omero_image_entrypoint", lib / "entrypoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    state.mkdir()
    Path(module.RUN).mkdir()
    # The entrypoint and the modules shipped beside it, by name as the tests use them.
    return SimpleNamespace(**{**vars(sys.modules["omero_start_state"]), **vars(sys.modules["omero_start_services"]),
                              **vars(module)})


def loaded(path: str) -> dict[str, str]:
    """The settings of a file of `omero load` lines, parsed as omero's CLI splits them."""
    settings = {}
    for line in Path(path).read_text().splitlines():
        words = shlex.split(line)
        if words[:2] == ["config", "set"]:
            key, value = [word for word in words[2:] if word != "--"]
            settings[key] = value
    return settings


def test_server_state_certificate_and_configuration(entrypoint, monkeypatch):
    monkeypatch.setenv("CONFIG_omero_ports_prefix", "1")
    password = "it's a $(hard) one"
    entrypoint.server(5433, password, entrypoint.site_config())

    config = f"{entrypoint.SERVER_CONFIG}/00-image.omero"
    assert Path(config).read_text().startswith("config drop default\n")
    settings = loaded(config)
    assert settings["omero.db.pass"] == password
    assert settings["omero.db.port"] == "5433"
    assert settings["omero.data.dir"] == entrypoint.DATA
    assert loaded(f"{entrypoint.SERVER_CONFIG}/50-site.omero") == {"omero.ports.prefix": "1"}
    assert Path(config).stat().st_mode & 0o777 == 0o600
    assert (Path(entrypoint.SERVER) / "etc" / "grid" / "templates.xml").read_text() == "<icegrid/>\n"
    assert Path(entrypoint.DATA, "ManagedRepository").stat().st_mode & 0o7777 == 0o2775

    # The store opens with the password the configuration gives Glacier2, and holds the key.
    certs = Path(settings["omero.glacier2.IceSSL.DefaultDir"])
    store = certs / settings["omero.glacier2.IceSSL.CertFile"]
    assert store.stat().st_mode & 0o777 == 0o600
    opened = subprocess.run(["openssl", "pkcs12", "-in", str(store), "-passin", "stdin", "-nodes"],
                            input=settings["omero.glacier2.IceSSL.Password"], capture_output=True, text=True)
    assert opened.returncode == 0, opened.stderr
    assert "PRIVATE KEY" in opened.stdout and "CN = OMERO.server" in opened.stdout
    assert settings["omero.glacier2.IceSSL.Password"] != "secret"

    # A later start keeps the certificate, and takes a newer image's etc/ afresh.
    made = store.stat().st_mtime_ns
    Path(entrypoint.IMAGE["server_etc"], "grid", "templates.xml").write_text("<icegrid>newer</icegrid>\n")
    entrypoint.server(5433, password, entrypoint.site_config())
    assert store.stat().st_mtime_ns == made
    assert loaded(config)["omero.glacier2.IceSSL.Password"] == settings["omero.glacier2.IceSSL.Password"]
    assert (Path(entrypoint.SERVER) / "etc" / "grid" / "templates.xml").read_text() == "<icegrid>newer</icegrid>\n"


def test_server_refused_without_the_database_password(entrypoint):
    with pytest.raises(entrypoint.Refused, match="OMERO_DB_PASSWORD"):
        entrypoint.server(5432, None, [])
    assert not Path(entrypoint.SERVER).exists()


@pytest.mark.parametrize(("value", "refused"), [
    ("long-enough-password", None),
    ("changeme", "is shorter than 12 characters: too weak"),
    ("passwordpassword", "is one chunk repeated: too weak"),
    ("Changeme2024", "is a well-known password"),
    ("tab\there-long-enough", "printable ASCII"),
])
def test_given_root_password(entrypoint, monkeypatch, value, refused):
    monkeypatch.setenv("OMERO_ROOT_PASSWORD", value)
    if refused:
        with pytest.raises(entrypoint.Refused, match=f"OMERO_ROOT_PASSWORD .*{refused}"):
            entrypoint.given_password("OMERO_ROOT_PASSWORD")
    else:
        assert entrypoint.given_password("OMERO_ROOT_PASSWORD") == value


def test_services_inherit_no_password_nor_configuration(entrypoint):
    environ = {"PATH": "/usr/bin", "OMERO_HTTP_PORT": "8080", "OMERO_USERDIR": "/state/web/home",
               "OMERO_DB_PASSWORD": "db-secret", "OMERO_DB_PASSWORD_FILE": "/run/secrets/db",
               "OMERO_ROOT_PASSWORD": "root-secret", "OMERO_ROOT_PASSWORD_FILE": "/run/secrets/root",
               "CONFIG_omero_web_email__host__password": "mail-secret"}
    assert entrypoint.service_environment(environ) == {
        "PATH": "/usr/bin", "OMERO_HTTP_PORT": "8080", "OMERO_USERDIR": "/state/web/home"}


# -- the state's lock ---------------------------------------------------------------------
def test_a_second_holder_of_the_state_is_refused_naming_the_first(entrypoint):
    held = entrypoint.hold_state("required")
    assert held is not None
    holder = Path(entrypoint.LOCK).read_text()
    assert f"pid {os.getpid()}" in holder
    # Another process, as a second container would be: refused while the first holds it.
    probe = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
             "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)")
    other = subprocess.run([sys.executable, "-c", probe, entrypoint.LOCK], capture_output=True, text=True)
    assert other.returncode != 0 and "BlockingIOError" in other.stderr
    # A second open file (flock's locks belong to open files): refused, naming the holder.
    with pytest.raises(entrypoint.Refused, match=r"in use by another container \(host .* pid \d+"):
        entrypoint.hold_state("required")
    os.close(held)
    assert subprocess.run([sys.executable, "-c", probe, entrypoint.LOCK]).returncode == 0
    os.close(entrypoint.hold_state("required"))


@pytest.mark.parametrize(("error", "mode", "outcome"), [
    (errno.ENOLCK, "required", "refused"),
    (errno.EOPNOTSUPP, "required", "refused"),
    (errno.ENOSYS, "required", "refused"),
    (errno.ENOLCK, "if-supported", "warned"),
    (errno.EOPNOTSUPP, "if-supported", "warned"),
    (errno.EIO, "if-supported", "failed"),
])
def test_a_file_system_without_locks(entrypoint, monkeypatch, capsys, error, mode, outcome):
    """No file system here lacks locks: flock answers as NFS without lockd would."""
    def no_locks(descriptor, operation):
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    if outcome == "warned":
        assert entrypoint.hold_state(mode) is None
        assert "WARNING: the file system of" in capsys.readouterr().err
    else:
        with pytest.raises(entrypoint.Refused) as refused:
            entrypoint.hold_state(mode)
        expected = "OMERO_STATE_LOCK=if-supported" if outcome == "refused" else "cannot lock the state"
        assert expected in str(refused.value)


def test_an_unknown_lock_mode_is_refused(entrypoint):
    with pytest.raises(entrypoint.Refused, match="OMERO_STATE_LOCK='off' is not one of required, if-supported"):
        entrypoint.hold_state("off")
    assert not Path(entrypoint.LOCK).exists()


# -- the site's configuration -------------------------------------------------------------
@pytest.mark.parametrize(("variable", "value", "setting"), [
    ("CONFIG_omero_web_public_enabled", "true", ("omero.web.public.enabled", "true")),
    ("CONFIG_omero_web_server__list", '[["omero.example.org", 4064, "omero"]]',
     ("omero.web.server_list", '[["omero.example.org", 4064, "omero"]]')),
    ("CONFIG_omero_web_login__view", "it's \t$(odd)", ("omero.web.login_view", "it's \t$(odd)")),
    ("CONFIG_omero_web_ui_top__links", "Ünïcode", ("omero.web.ui.top_links", "Ünïcode")),
])
def test_a_config_variable_becomes_one_setting(entrypoint, tmp_path, variable, value, setting):
    path = tmp_path / "site.omero"
    path.write_text(entrypoint.config_variable(variable, value))
    assert loaded(str(path)) == dict([setting])


@pytest.mark.parametrize(("variable", "value", "reason"), [
    ("CONFIG_omero_web_server__list", '[["a", 4064,\n "b"]]', r"holds '\\n': a setting's value is one line"),
    ("CONFIG_omero_web_x", "a\rb", r"holds '\\r'"),
    ("CONFIG_omero_web_x", "bell\x07", r"holds '\\x07'"),
    ("CONFIG_omero_web-x", "1", "not a setting's name"),
    ("CONFIG_omero_", "1", "not a setting's name"),
    ("CONFIG_omero", "1", "not a setting's name"),
    ("CONFIG_omeroweb", "1", "not a setting's name"),
])
def test_a_config_variable_that_cannot_be_one_setting_is_refused(entrypoint, variable, value, reason):
    with pytest.raises(entrypoint.Refused, match=f"^{variable}: .*{reason}"):
        entrypoint.config_variable(variable, value)


def test_site_config_names_each_source_in_order(entrypoint):
    config = Path(entrypoint.CONFIG)
    config.mkdir()
    (config / "20-b.omero").write_text("config set omero.web.b 2")
    (config / "10-a.omero").write_text("config set omero.web.a 1\n")
    (config / "notes.txt").write_text("not loaded")
    parts = entrypoint.site_config({"PATH": "/usr/bin", "CONFIG_omero_web_c": "3"})
    assert [source for source, _ in parts] == [str(config / "10-a.omero"), str(config / "20-b.omero"),
                                               "CONFIG_omero_web_c"]
    assert entrypoint.config_lines(parts).splitlines() == [
        f"# {config / '10-a.omero'}", "config set omero.web.a 1", "",
        f"# {config / '20-b.omero'}", "config set omero.web.b 2",
        "# CONFIG_omero_web_c", "config set -- omero.web.c 3"]
    (config / "30-latin1.omero").write_bytes(b"config set omero.web.c caf\xe9\n")
    with pytest.raises(entrypoint.Refused, match=r"30-latin1.omero: cannot be read as UTF-8 text"):
        entrypoint.site_config({})


@pytest.mark.parametrize(("message", "source"), [
    ("ValueError: Invalid SERVER_LIST (omero.web.server_list = 'x'). Expecting value", "CONFIG_omero_web_server__list"),
    ("ValueError: Invalid PUBLIC_ENABLED (omero.web.public.enabled = 'maybe')", "/state/config/10-site.omero"),
    ("ImportError: No module named 'nothere' (omero.web.apps = '[\"nothere\"]')", "/state/config/20-apps.omero"),
    ("ValueError: something else entirely", ""),
])
def test_the_source_of_a_refused_setting(entrypoint, message, source):
    parts = [("/state/config/10-site.omero", "config set omero.web.public.enabled maybe\n"
                                             "config set omero.web.server_list '[]'\n"),
             ("/state/config/20-apps.omero", "  config   set -- 'omero.web.apps' '[\"nothere\"]'\n"),
             ("CONFIG_omero_web_server__list", "config set -- omero.web.server_list x\n")]
    assert entrypoint.setting_source(message, parts) == source


# -- what the image's programs and site read at start ------------------------------------
def test_the_start_writes_what_the_image_reads(entrypoint, monkeypatch):
    monkeypatch.setenv("OMERO_HTTP_ADDRESS", "127.0.0.2")
    monkeypatch.setenv("OMERO_WEB_WORKERS", "5")
    conf, environment = entrypoint.runtime(8181, 4181, 5433)
    run = Path(entrypoint.RUN)
    assert (run / "nginx-listen-default.conf").read_text() == "listen 127.0.0.2:8181 default_server;\n"
    assert (run / "nginx-listen.conf").read_text() == "listen 127.0.0.2:8181;\n"
    assert (run / "nginx-upstream.conf").read_text() == "server 127.0.0.1:4181 fail_timeout=0;\n"
    assert "    include /etc/nginx/conf.d/omero-web.conf;\n" in (run / "nginx.conf").read_text()
    assert f"files = /etc/supervisor/conf.d/*.conf {run}/omero-image-watch.conf\n" in Path(conf).read_text()
    assert environment == {
        "OMERO_DB_PORT": "5433", "OMERO_WEB_PORT": "4181", "OMERO_WEB_WORKERS": "5",
        "OMERO_PG_SOCKETS": f"{run}/postgresql", "OMERO_NGINX_CONF": f"{run}/nginx.conf",
        "OMERO_RUN_AS_POSTGRESQL": "root", "OMERO_RUN_AS_NGINX": "root", "OMERO_RUN_AS_OMERO_WEB": "root",
        "OMERO_RUN_AS_OMERO_SERVER": "root", "OMERO_HOME_POSTGRESQL": f"{entrypoint.HOME}/postgresql",
        "OMERO_HOME_NGINX": f"{entrypoint.HOME}/nginx", "OMERO_HOME_OMERO_WEB": f"{entrypoint.WEB}/home",
        "OMERO_HOME_OMERO_SERVER": f"{entrypoint.SERVER}/home"}
    assert Path(entrypoint.WEB, "home").stat().st_mode & 0o777 == 0o700
    # The deploy's programs, built for the image, read those variables and no others.
    settings = image_settings({"omero_image_build": True})
    assert set(services.image_environment(settings)) == set(environment)


@pytest.mark.parametrize(("variable", "value"), [("OMERO_WEB_WORKERS", "0"), ("OMERO_HTTP_ADDRESS", "::1")])
def test_a_bad_runtime_variable_is_refused(entrypoint, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(entrypoint.Refused, match=variable):
        entrypoint.runtime(8181, 4181, 5433)
    assert not list(Path(entrypoint.RUN).iterdir())


# -- the watch: a program that keeps failing stops the container -------------------------
@pytest.fixture(scope="module")
def watch():
    spec = importlib.util.spec_from_file_location("omero_image_watch", ROOT / "omero_image" / "watch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exited(program: str, expected: str = "0") -> tuple[str, dict]:
    return "PROCESS_STATE_EXITED", {"processname": program, "expected": expected}


@pytest.mark.parametrize(("events", "stops"), [
    # (seconds, event) in order; the answer to the last one.
    ([(0, ("PROCESS_STATE_FATAL", {"processname": "nginx", "from_state": "BACKOFF"}))],
     "nginx could not be started"),
    ([(0, exited("omero-web")), (6, exited("omero-web"))], None),
    ([(0, exited("omero-web")), (6, exited("omero-web")), (12, exited("omero-web"))],
     "omero-web exited unexpectedly 3 times within 120 s"),
    # Spread out: a crash now and then is what autorestart is for.
    ([(0, exited("omero-web")), (100, exited("omero-web")), (200, exited("omero-web"))], None),
    # Expected exits and other programs' exits do not count.
    ([(0, exited("omero-web")), (1, exited("omero-web", "1")), (2, exited("postgresql")),
      (3, exited("omero-web", "1"))], None),
    ([(0, ("PROCESS_STATE_RUNNING", {"processname": "nginx"}))], None),
])
def test_the_watch_decides_when_to_stop(watch, events, stops):
    decided = watch.Watch()
    answers = [decided.event(name, payload, when) for when, (name, payload) in events]
    assert all(answer is None for answer in answers[:-1])
    assert (answers[-1] is None) if stops is None else answers[-1].startswith(stops)


def test_the_watch_reports_the_programs_last_log_lines(watch, tmp_path):
    (tmp_path / "omero-web.log").write_text("".join(f"line {number}\n" for number in range(40)))
    text = watch.report(str(tmp_path), str(tmp_path), "omero-web", "omero-web exited unexpectedly 3 times")
    lines = text.splitlines()
    assert lines[0] == "omero-web exited unexpectedly 3 times: stopping the container."
    assert lines[1] == f"last lines of {tmp_path}/omero-web.log:"
    assert lines[2:] == [f"    line {number}" for number in range(25, 40)]
    assert watch.report(str(tmp_path), str(tmp_path), "nginx", "gone").splitlines() == [
        "gone: stopping the container."]


def test_the_watch_speaks_supervisords_protocol(watch, tmp_path):
    """The listener as supervisord runs it: READY, an event, RESULT; a FATAL event writes
    RUN/failed and signals its parent (here a shell that reports the signal)."""
    (tmp_path / "nginx.log").write_text("bind() to 0.0.0.0:8080 failed (98: Address already in use)\n")
    payload = "processname:nginx groupname:nginx from_state:BACKOFF"
    events = (f"ver:3.0 server:supervisor serial:1 pool:w poolserial:1 eventname:PROCESS_STATE_RUNNING len:0\n"
              f"ver:3.0 server:supervisor serial:2 pool:w poolserial:2 eventname:PROCESS_STATE_FATAL "
              f"len:{len(payload)}\n{payload}")
    parent = ("import signal, subprocess, sys\n"
              "signalled = []\n"
              "signal.signal(signal.SIGTERM, lambda *_: signalled.append(True))\n"
              "listener = subprocess.run(sys.argv[1:], input=sys.stdin.read(), capture_output=True, text=True)\n"
              "print(listener.stdout, end='')\n"
              "print('TERMINATED' if signalled else 'not signalled', file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", parent, sys.executable, str(ROOT / "omero_image" / "watch.py"),
                             str(tmp_path), str(tmp_path)], input=events, capture_output=True, text=True, timeout=30)
    assert result.stdout.startswith("READY\nRESULT 2\nOKREADY\nRESULT 2\nOKREADY\n")
    assert "TERMINATED" in result.stderr
    assert (tmp_path / "failed").read_text() == (
        "nginx could not be started (supervisord gave up on it): stopping the container.\n"
        f"last lines of {tmp_path}/nginx.log:\n    bind() to 0.0.0.0:8080 failed (98: Address already in use)\n")
