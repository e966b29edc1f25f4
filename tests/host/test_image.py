"""The OMERO image (scripts/build-image): built once per source digest, then run as a lab
would run it: podman as root on a fresh volume, restarted, replaced by a new container on
the same volume, and Apptainer-style (another uid, read-only root, a bind-mounted state
directory, unprivileged ports from the environment). A second container on a state in
use, a bad setting and a program that keeps failing each end the container at once,
non-zero, saying why. Every layer of the saved tarball is searched for the passwords
these tests use."""

import json
import os
import re
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from deploys.options import DEFAULTS
from omero_image import build

from ..docs_commands import block
from .audit import Expected, Listener, audit
from .checks import login_page
from .testhosts import (
    CACHE,
    EXTRA_CA_CERTIFICATES,
    PODMAN_ENV,
    PREFIX,
    ROOT,
    RUN_ID,
    RUN_LABEL,
    cached_icepy_wheel,
    podman,
    sha256_of,
    wait_for,
)

REPOSITORY = "localhost/omero-pyinfra-test"
FIGURES = ROOT / "artifacts" / "image-figures.json"
SQL = "psql -XAtq -h 127.0.0.1 -U omero -d omero"
# Passwords the tests hand to or read from the image, by the test that saw them: none may be in a layer.
SEEN_PASSWORDS: dict[str, str] = {}
PASSWORD_COLLECTORS = {"first start", "apptainer style", "readme podman"}


def figure(name: str, value) -> None:
    """Keep a measured figure for the README (artifacts/image-figures.json)."""
    FIGURES.parent.mkdir(exist_ok=True)
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    figures[name] = value
    FIGURES.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"{name}: {value}")


def build_options(output: Path, **extra) -> build.Options:
    """The build as these tests make it: the lab's CAs, and the cached IcePy wheel if any."""
    options = build.Options(output=output, extra_ca_certificates=EXTRA_CA_CERTIFICATES, **extra)
    wheel = cached_icepy_wheel("cp311")
    if wheel:
        options.icepy_wheel, options.icepy_wheel_sha256 = str(wheel), sha256_of(wheel)
    return options


@pytest.fixture(scope="module")
def image():
    """(tag, tarball, the build's secrets): built when the sources changed, else the cached one."""
    options = build_options(Path("unset"))
    key = build.inputs_digest(options)
    options.tag, options.output = f"{REPOSITORY}:{key}", CACHE / f"omero-image-{key}.tar"
    kept_secrets = options.output.with_suffix(".secrets")  # the build's throwaway ones, 0600
    if not (options.output.exists() and kept_secrets.exists()):
        for stale in [*CACHE.glob("omero-image-*.tar"), *CACHE.glob("omero-image-*.secrets")]:
            stale.unlink()
        for old in podman("images", "--format", "{{.Repository}}:{{.Tag}}", REPOSITORY).stdout.split():
            podman("rmi", "-f", old, check=False)
        built = build.build(options, env=PODMAN_ENV)
        descriptor = os.open(kept_secrets, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write("\n".join(needle.hex() for needle in built.secrets) + "\n")
        figure("cold build (s)", round(built.seconds))
        # What a lab gets is the tarball: the tests run the image loaded from it.
        podman("rmi", options.tag)
    if podman("image", "exists", options.tag, check=False).returncode != 0:
        podman("load", "-q", "-i", str(options.output))
    needles = [bytes.fromhex(line) for line in kept_secrets.read_text().split()]
    return options.tag, options.output, needles


class Started:
    """A container of the image, its published HTTP port and its state."""

    def __init__(self, name: str, tag: str, state: str, *args: str, http_port: int = build.HTTP_PORT):
        self.name = PREFIX + "image-" + name
        podman("rm", "-f", "-t", "0", self.name, check=False)
        self.started = time.monotonic()
        podman("run", "-d", "--name", self.name, "--label", f"{RUN_LABEL}={RUN_ID}",
               "-p", f"127.0.0.1::{http_port}", "-v", f"{state}:{build.STATE}", *args, tag)
        self.http_port = http_port

    @property
    def url(self) -> str:
        published = podman("port", self.name, f"{self.http_port}/tcp").stdout.strip()
        return f"http://127.0.0.1:{published.rsplit(':', 1)[1]}"

    def serving(self, timeout: float = 120) -> float:
        """Wait for the login page; returns seconds since the container was started (or restarted)."""
        wait_for(lambda: login_page(self.url), f"{self.name}'s login page", timeout, interval=0.25)
        return time.monotonic() - self.started

    def exec(self, command: str, check: bool = True):
        return podman("exec", self.name, "sh", "-c", command, check=check)

    def restart(self) -> None:
        podman("stop", "-t", "30", self.name)
        self.started = time.monotonic()
        podman("start", self.name)

    def remove(self) -> None:
        podman("rm", "-f", "-t", "10", self.name, check=False)


def run_to_the_end(name: str, tag: str, state: str, *args: str, timeout: float = 120) -> tuple[int, str, float]:
    """A container started in the foreground: its exit status, its output and how long it ran."""
    name = PREFIX + "image-" + name
    podman("rm", "-f", "-t", "0", name, check=False)
    started = time.monotonic()
    try:
        ended = podman("run", "--name", name, "--label", f"{RUN_LABEL}={RUN_ID}", "-v", f"{state}:{build.STATE}",
                       *args, tag, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name} still runs after {timeout} s")
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)
    return ended.returncode, ended.stdout + ended.stderr, time.monotonic() - started


@pytest.fixture
def volume():
    name = f"{PREFIX}image-{RUN_ID}-{secrets.token_hex(3)}"
    podman("volume", "create", "--label", f"{RUN_LABEL}={RUN_ID}", name)
    yield name
    podman("volume", "rm", "-f", name, check=False)


def test_labels_entrypoint_and_size(image):
    tag, tarball, _ = image
    config = json.loads(podman("image", "inspect", tag).stdout)[0]["Config"]
    labels = config["Labels"]
    assert labels["omero-pyinfra.omero-web"] == DEFAULTS["omero_web_version"]
    assert labels["omero-pyinfra.omero-py"] == DEFAULTS["omero_py_version"]
    assert labels["omero-pyinfra.zeroc-ice"] == "3.6.5"
    assert re.fullmatch(r"15\.[0-9]+", labels["omero-pyinfra.postgresql"])
    assert labels["omero-pyinfra.omero-server"] == "none"
    # Ours and podman's own; none of the build container's.
    assert {key for key in labels if not key.startswith(("omero-pyinfra.", "org.opencontainers.image."))} \
        <= {"io.buildah.version"}, labels
    assert config["Entrypoint"] == ["/usr/local/sbin/omero-image"]
    assert build.STATE in config["Volumes"]
    size_mb = round(tarball.stat().st_size / 1e6)
    figure("image tarball (MB)", size_mb)
    # debootstrap's minbase is ~180 MB; OMERO.web's venv (Django, numpy, IcePy) ~330 MB.
    assert size_mb < 1000


def test_first_start_restart_and_new_container_keep_the_state(image, volume):
    tag, _, _ = image
    first = Started("root", tag, volume)
    try:
        figure("first start to login page, fresh volume (s)", round(first.serving(), 1))
        password = first.exec(f"cat {build.STATE}/secrets/db-password").stdout.strip()
        SEEN_PASSWORDS["first start"] = password
        key = first.exec(f"cat {build.STATE}/web/django_secret_key").stdout
        # As a client of the role would: over TCP with the generated password.
        first.exec(f"PGPASSWORD=$(cat {build.STATE}/secrets/db-password) {SQL} -c "
                   "\"CREATE TABLE kept (note text); INSERT INTO kept VALUES ('written before the restart')\"")
        first.restart()
        figure("restart to login page (s)", round(first.serving(), 1))
        select = f"PGPASSWORD=$(cat {build.STATE}/secrets/db-password) {SQL} -c 'SELECT note FROM kept'"
        assert first.exec(select).stdout.strip() == "written before the restart"
        first.remove()
        # A rebuilt image may give postgres and omero-web other uids: the state it finds
        # owned by someone else is handed over.
        podman("run", "--rm", "--entrypoint", "chown", "-v", f"{volume}:{build.STATE}", tag,
               "-R", "60001:60001", f"{build.STATE}/postgresql", f"{build.STATE}/web")

        second = Started("root", tag, volume)
        figure("new container, existing volume owned by other uids, to login page (s)",
               round(second.serving(), 1))
        assert second.exec(select).stdout.strip() == "written before the restart"
        assert second.exec(f"cat {build.STATE}/web/django_secret_key").stdout == key
        assert second.exec(f"cat {build.STATE}/secrets/db-password").stdout.strip() == password
        # Each service as its own user under root.
        processes = second.exec("ps -eo user:20=,args=").stdout.splitlines()
        for user, program in (("postgres", "postgres -D"), ("omero-web", "gunicorn"), ("www-data", "nginx: worker")):
            assert any(line.split()[0] == user and program in line for line in processes), \
                f"no {program} running as {user}"
        # The permission audit (docs/security.md), with the image's own layout and ports.
        expected = Expected(secret_paths={f"{build.STATE}/{sub}" for sub in ("secrets", "web", "postgresql")},
                            secret_values={password, key.strip()},
                            listeners=[Listener(build.HTTP_PORT), Listener(build.WEB_PORT, "127.0.0.1"),
                                       Listener(5432, "127.0.0.1"), Listener(5432, "::1")])
        # supervisord's and nginx's configuration are written to run/ at each start.
        expected.root_trusted |= {"/opt/omero", f"{build.STATE}/run"}
        # The web's overrides are loaded by the web user, not root.
        expected.service_owned |= {"/opt/omero/web/OMERO.web", f"{build.STATE}/run/postgresql",
                                   f"{build.STATE}/run/nginx", f"{build.STATE}/run/omero-web-overrides.omero"}
        assert audit(second.exec, expected) == []
    finally:
        podman("rm", "-f", "-t", "10", PREFIX + "image-root", check=False)


def test_apptainer_style_user_read_only_root_and_env_ports(image, tmp_path):
    """As Apptainer runs an image: another uid, nothing writable but the bound state (and
    tmpfs /run, /tmp), the host's network so ports must be unprivileged and free: taken
    from the environment. The password comes from a mounted file; overrides from config/
    and CONFIG_* variables."""
    tag, _, _ = image
    uid = 4321
    state = tmp_path / "omero-state"
    (state / "config").mkdir(parents=True)
    (state / "config" / "10-site.omero").write_text("config set omero.web.public.enabled false\n")
    password_file = tmp_path / "db-password"
    password = secrets.token_urlsafe(18)
    SEEN_PASSWORDS["apptainer style"] = password
    password_file.write_text(password + "\n")
    for path in (state, state / "config", state / "config" / "10-site.omero", password_file):
        os.chown(path, uid, uid)
    password_file.chmod(0o600)
    ports = ["-e", "OMERO_HTTP_PORT=8181", "-e", "OMERO_WEB_PORT=4181", "-e", "OMERO_DB_PORT=5433"]
    started = Started("apptainer", tag, str(state), "--user", f"{uid}:{uid}", "--read-only",
                      "--tmpfs", "/run", "--tmpfs", "/tmp", *ports,
                      "-v", f"{password_file}:/run/secrets/db-password:ro",
                      "-e", "OMERO_DB_PASSWORD_FILE=/run/secrets/db-password",
                      "-e", "CONFIG_omero_web_session__expire__at__browser__close=false",
                      http_port=8181)
    try:
        figure("first start to login page, Apptainer-style (s)", round(started.serving(), 1))
        owners = {line.split()[0] for line in started.exec("ps -eo uid=").stdout.splitlines()}
        assert owners == {str(uid)}
        listening = started.exec("cat /proc/net/tcp").stdout
        for port in (8181, 4181, 5433):
            assert f":{port:04X} 00000000:0000 0A" in listening, f"nothing listens on {port}"
        assert started.exec("PGPASSWORD=$(cat /run/secrets/db-password) psql -XAtq -h 127.0.0.1 -p 5433 "
                            "-U omero -d omero -c 'SELECT 1'").stdout.strip() == "1"
        loaded = started.exec(f"OMERODIR=/opt/omero/web/OMERO.web OMERO_USERDIR={build.STATE}/web/home "
                              "/opt/omero/web/venv3/bin/omero config get").stdout
        assert "omero.web.public.enabled=false" in loaded
        assert "omero.web.session_expire_at_browser_close=false" in loaded
        # The services inherit neither the password's file nor the configuration variables.
        services = started.exec("for p in $(pgrep -x 'supervisord|gunicorn|nginx|postgres'); do "
                                "tr '\\0' '\\n' < /proc/$p/environ; echo; done").stdout
        assert "PATH=" in services  # the environments were read
        assert "OMERO_DB_PASSWORD" not in services and "CONFIG_omero" not in services
        # Nothing but the state changed: the root refused every write.
        assert started.exec("touch /opt/omero/probe", check=False).returncode != 0
        assert not (state / "secrets").exists(), "a password was generated although one was given"
        assert {path.stat().st_uid for path in state.rglob("*")} == {uid}
    finally:
        started.remove()


def readme_commands(first: str, tag: str) -> list[str]:
    """A README block's commands, continued lines joined, the image's name replaced by ``tag``."""
    text = block("README.md", first).replace("\\\n", " ").replace("localhost/omero-pyinfra:<tag>", tag)
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_the_readmes_podman_commands(image, tmp_path):
    """The README's podman lines as a sysadmin types them, in a directory holding
    artifacts/omero-image.tar (the tarball the tests built). Their fixed names and ports
    are a sysadmin's: the test refuses to touch ones that already exist."""
    tag, tarball, _ = image
    assert podman("container", "exists", "omero", check=False).returncode != 0, "a container 'omero' exists"
    assert podman("volume", "exists", "omero-state", check=False).returncode != 0, "a volume 'omero-state' exists"
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "omero-image.tar").symlink_to(tarball)
    (tmp_path / "omero-state").mkdir()
    os.chown(tmp_path / "omero-state", 1000, 1000)
    env = {**PODMAN_ENV, "HOME": str(tmp_path)}

    def typed(command: str) -> str:
        ran = subprocess.run(["bash", "-e", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)
        assert ran.returncode == 0, (command, ran.stderr[-2000:])
        return ran.stdout

    as_root = readme_commands("# Podman (or Docker: the same with docker)", tag)
    as_user = readme_commands("# as a user, read-only, a directory of yours (as Apptainer runs it)", tag)
    assert [command.split()[:2] for command in as_root] == \
        [["podman", "load"], ["podman", "run"], ["podman", "exec"], ["podman", "exec"]]
    user_container = ""
    try:
        typed(as_root[0])
        typed(as_root[1])
        wait_for(lambda: login_page("http://127.0.0.1:8080"), "the README's container's login page", 180)
        password = typed(as_root[2]).strip()
        SEEN_PASSWORDS["readme podman"] = password
        assert len(password) >= 16, "no generated database password"
        wait_for(lambda: typed(as_root[3]).count("RUNNING") == 4, "every program RUNNING", 30)
        (command,) = as_user
        user_container = typed(command).strip()
        wait_for(lambda: login_page("http://127.0.0.1:8181"), "the README's user container's login page", 180)
        assert {path.stat().st_uid for path in (tmp_path / "omero-state").rglob("*")} == {1000}
    finally:
        podman("rm", "-f", "-t", "10", "omero", *filter(None, [user_container]), check=False)
        podman("volume", "rm", "-f", "omero-state", check=False)


def test_a_second_container_on_a_state_in_use_refuses(image, volume):
    """Each container has its own process ids, so PostgreSQL's postmaster.pid cannot see a
    second one on the same data files: the state's lock refuses it at once, and the first
    goes on serving. Each service runs with its own HOME."""
    tag, _, _ = image
    first = Started("lock-first", tag, volume)
    try:
        first.serving()
        holder = first.exec("hostname").stdout.strip()
        status, output, seconds = run_to_the_end("lock-second", tag, volume)
        figure("second container on a state in use, to its refusal (s)", round(seconds, 1))
        assert status != 0 and seconds < 30, output
        assert f"the state {build.STATE} is in use by another container (host {holder}, pid 1" in output, output
        assert "Traceback" not in output
        login_page(first.url)
        # Its run/ (supervisord's socket) kept, every program running (past startsecs).
        def all_running():
            out = first.exec(f"supervisorctl -c {build.STATE}/run/supervisord.conf status", check=False).stdout
            return out if out.count("RUNNING") == 4 else None

        programs = wait_for(all_running, "every program of the first container RUNNING", 30)

        # Each program's own HOME, its user's alone (none of them root's). nginx writes its
        # process title over its environment: its program's configuration says it instead.
        homes = {"postgresql": (f"{build.STATE}/home/postgresql", "postgres"),
                 "omero-web": (f"{build.STATE}/web/home", "omero-web"),
                 "omero-image-watch": (f"{build.STATE}/home/omero-image-watch", "root")}
        for program, (home, user) in homes.items():
            pid = re.search(rf"(?m)^{program} +RUNNING +pid ([0-9]+)", programs).group(1)
            environ = podman("exec", "-u", user, first.name, "cat", f"/proc/{pid}/environ").stdout.split("\0")
            assert f"HOME={home}" in environ, (program, environ)
            assert first.exec(f"stat -c '%U %a' {home}").stdout.split() == [user, "700"]
        # The image's program reads it from supervisord's environment, where the start put it.
        assert 'environment=HOME="%(ENV_OMERO_HOME_NGINX)s"\n' in first.exec(
            "cat /etc/supervisor/conf.d/nginx.conf").stdout
        supervisord = first.exec("tr '\\0' '\\n' < /proc/$(pgrep -xo supervisord)/environ").stdout.split()
        assert f"OMERO_HOME_NGINX={build.STATE}/home/nginx" in supervisord, supervisord
        assert first.exec(f"stat -c '%U %a' {build.STATE}/home/nginx").stdout.split() == ["root", "700"]
        # OMERO.web's start no longer fails to use root's home (gunicorn's control socket).
        web_log = first.exec(f"cat {build.STATE}/log/omero-web.log").stdout
        assert f"Control socket listening at {build.STATE}/web/home/.gunicorn" in web_log and "/root" not in web_log

        first.remove()  # the lock goes with its container: a new one starts on the state
        again = Started("lock-again", tag, volume)
        again.serving()
        again.remove()
    finally:
        first.remove()
        podman("rm", "-f", "-t", "0", PREFIX + "image-lock-again", check=False)


@pytest.mark.parametrize(("variable", "value", "says"), [
    # Taken by `omero config`, refused by OMERO.web when it reads its settings.
    ("CONFIG_omero_web_server__list", "omero.example.org:4064",
     "OMERO.web refuses its configuration (CONFIG_omero_web_server__list): "),
    ("CONFIG_omero_web_session__cookie__age", "soon",
     "OMERO.web refuses its configuration (CONFIG_omero_web_session__cookie__age): ValueError: "),
    ("CONFIG_omero_web_apps", '["omero_no_such_app"]',
     "OMERO.web refuses its configuration: ModuleNotFoundError: No module named 'omero_no_such_app'"),
    ("CONFIG_omero_web_login__view", "weblogin\nwebindex", "CONFIG_omero_web_login__view: its value holds '\\n'"),
])
def test_a_bad_config_variable_ends_the_container_naming_it(image, volume, variable, value, says):
    tag, _, _ = image
    status, output, seconds = run_to_the_end("bad-config", tag, volume, "-e", f"{variable}={value}")
    figure(f"bad {variable}, to the container's end (s)", round(seconds, 1))
    assert status != 0 and seconds < 30, output
    assert says in output and "Traceback" not in output, output


@pytest.mark.parametrize(("content", "says"), [
    ("config set omero.web.public.enabled true\nconfig set omero.web.server_list '[[\"a\", 4064, \"a\"]'\n",
     "OMERO.web refuses its configuration ({file}): "),
    ("config set omero.web.login_view 'weblogin\n",
     "{file} is not OMERO configuration `omero load` takes: ValueError: No closing quotation"),
    ("conifg set omero.web.login_view weblogin\n", "{file} is not OMERO configuration `omero load` takes: "),
])
def test_a_bad_config_file_ends_the_container_naming_it(image, tmp_path, content, says):
    tag, _, _ = image
    state = tmp_path / "state"
    (state / "config").mkdir(parents=True)
    (state / "config" / "10-site.omero").write_text("config set omero.web.public.enabled false\n")
    (state / "config" / "20-bad.omero").write_text(content)
    status, output, seconds = run_to_the_end("bad-file", tag, str(state))
    figure("bad config/*.omero file, to the container's end (s)", round(seconds, 1))
    assert status != 0 and seconds < 30, output
    assert says.format(file=f"{build.STATE}/config/20-bad.omero") in output and "Traceback" not in output, output


def test_a_program_that_keeps_failing_ends_the_container(image, volume):
    """As on an HPC node where Apptainer shares the node's network and someone else's
    program holds PostgreSQL's port: a container in a network namespace whose port is
    taken. supervisord gives up on PostgreSQL (FATAL) and the watch ends the container.
    (gunicorn 27 with --reuse-port binds in its workers: its master stays up however often
    they fail, so a taken OMERO.web port is not a program that exits.)"""
    tag, _, _ = image
    variable, port, says, logged = "OMERO_DB_PORT", 5432, "postgresql could not be started", "Address already in use"
    holder = PREFIX + "image-port-holder"
    podman("rm", "-f", "-t", "0", holder, check=False)
    podman("run", "-d", "--name", holder, "--label", f"{RUN_LABEL}={RUN_ID}", "--entrypoint", "python3", tag,
           "-m", "http.server", "--bind", "::", str(port))
    try:
        connect = f"import socket; socket.create_connection(('127.0.0.1', {port}))"
        wait_for(lambda: podman("exec", holder, "python3", "-c", connect, check=False).returncode == 0,
                 f"port {port} taken", 30)
        status, output, seconds = run_to_the_end("failing", tag, volume, "--network", f"container:{holder}",
                                                 "-e", f"{variable}={port}")
        figure(f"{says.split()[0]} failing, to the container's end (s)", round(seconds, 1))
        assert status != 0 and seconds < 90, output
        assert f"{says}" in output and logged in output, output
    finally:
        podman("rm", "-f", "-t", "0", holder, check=False)


def test_no_secret_in_any_layer(image):
    """The build's own passwords and keys, and every password these tests used, searched for
    in every file of every layer of the saved tarball; and no cluster, key or record shipped."""
    _, tarball, build_secrets = image
    assert build_secrets, "the build recorded none of its secrets"
    assert set(SEEN_PASSWORDS) == PASSWORD_COLLECTORS, "run with the tests above: they collect the passwords"
    forbidden = build.forbidden_paths(build.image_settings({}))
    seen = [password.encode() for password in SEEN_PASSWORDS.values()]
    assert build.layer_findings(tarball, build_secrets + seen, forbidden) == []


SERVER_ZIP, ICE_TARBALL = os.environ.get("OMERO_SERVER_ZIP"), os.environ.get("OMERO_ICE_TARBALL")
SERVER_OMERO = "OMERODIR=/opt/omero/server/OMERO.server OMERO_USERDIR=/tmp/cli /opt/omero/server/venv3/bin/omero"


@pytest.mark.skipif(not (SERVER_ZIP and ICE_TARBALL),
                    reason="needs a real OMERO.server zip and Ice 3.6.5 tarball for Debian 12: set "
                           "OMERO_SERVER_ZIP and OMERO_ICE_TARBALL to their paths")
def test_image_with_omero_server(tmp_path, volume):
    """An image built with the server's artifacts: on a fresh volume the schema, the
    certificate and the repository are made, root logs in, an image imported survives a
    restart, and no password of the build or of this start is in a layer."""
    options = build_options(tmp_path / "omero-server-image.tar",
                            server_artifact=SERVER_ZIP, server_sha256=sha256_of(Path(SERVER_ZIP)),
                            ice_artifact=ICE_TARBALL, ice_sha256=sha256_of(Path(ICE_TARBALL)))
    options.tag = f"{REPOSITORY}-server:{build.inputs_digest(options)}"
    built = build.build(options, env=PODMAN_ENV)
    figure("cold build with OMERO.server (s)", round(built.seconds))
    assert Path(SERVER_ZIP).name == f"OMERO.server-{built.labels['omero-pyinfra.omero-server']}-ice36.zip"
    root_password = secrets.token_urlsafe(18)
    started = Started("server", built.tag, volume, "-e", f"OMERO_ROOT_PASSWORD={root_password}")
    try:
        figure("first start with OMERO.server to login page, fresh volume (s)", round(started.serving(300), 1))
        login = f"{SERVER_OMERO} login -s localhost -u root -w {root_password}"
        wait_for(lambda: started.exec(login, check=False).returncode == 0, "root's login to OMERO.server", 300)
        fake = "'/tmp/kept&sizeX=32&sizeY=32.fake'"  # Bio-Formats' generated test image
        started.exec(f"touch {fake} && {SERVER_OMERO} import {fake}")
        images = (f"PGPASSWORD=$(cat {build.STATE}/secrets/db-password) {SQL} "
                  "-c \"SELECT count(*) FROM image WHERE name LIKE 'kept%'\"")
        assert started.exec(images).stdout.strip() == "1"
        assert started.exec(f"stat -c %a {build.STATE}/server/home/certs/server.p12").stdout.strip() == "600"
        started.restart()
        started.serving(300)
        wait_for(lambda: started.exec(login, check=False).returncode == 0, "root's login after a restart", 300)
        assert started.exec(images).stdout.strip() == "1"
        db_password = started.exec(f"cat {build.STATE}/secrets/db-password").stdout.strip()
        store_password = started.exec(f"cat {build.STATE}/server/home/.certificate-password").stdout.strip()
        needles = built.secrets + [p.encode() for p in (root_password, db_password, store_password)]
        assert build.layer_findings(built.tarball, needles, build.forbidden_paths(build.image_settings({}))) == []
    finally:
        started.remove()
        podman("rmi", "-f", built.tag, check=False)
