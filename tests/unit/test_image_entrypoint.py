"""The image's entrypoint preparing OMERO.server's state (no server runs: that needs the
server's zip; tests/host/test_image.py runs it when given one). The entrypoint is loaded
from a copy beside a manifest of a temporary state directory, as the image ships it, with
root as every service's user."""

import importlib.util
import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.unit


@pytest.fixture
def entrypoint(tmp_path):
    lib, state, server_etc = tmp_path / "lib", tmp_path / "state", tmp_path / "server-etc"
    (server_etc / "grid").mkdir(parents=True)
    (server_etc / "grid" / "templates.xml").write_text("<icegrid/>\n")
    lib.mkdir()
    shutil.copy(ROOT / "omero_image" / "entrypoint.py", lib)
    shutil.copy(ROOT / "deploys" / "scram.py", lib / "omero_scram.py")
    shutil.copy(ROOT / "deploys" / "passwords.py", lib / "omero_passwords.py")
    (lib / "image.json").write_text(json.dumps({
        "state": str(state), "server": True, "server_user": "root", "server_etc": str(server_etc),
        "db_name": "omero", "db_user": "omero",
    }))
    spec = importlib.util.spec_from_file_location("omero_image_entrypoint", lib / "entrypoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    state.mkdir()
    Path(module.RUN).mkdir()
    return module


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
    entrypoint.server(5433, password)

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
    entrypoint.server(5433, password)
    assert store.stat().st_mtime_ns == made
    assert loaded(config)["omero.glacier2.IceSSL.Password"] == settings["omero.glacier2.IceSSL.Password"]
    assert (Path(entrypoint.SERVER) / "etc" / "grid" / "templates.xml").read_text() == "<icegrid>newer</icegrid>\n"


def test_server_refused_without_the_database_password(entrypoint):
    with pytest.raises(entrypoint.Refused, match="OMERO_DB_PASSWORD"):
        entrypoint.server(5432, None)
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
