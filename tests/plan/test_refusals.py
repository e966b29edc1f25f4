"""Bad inputs stop the deploy while it is planned, before any host is touched, with a
message naming the option (or saying what is wrong with the inventory or host)."""

import pytest

from deploys.errors import OmeroDeployError, OmeroOptionError
from deploys.platform import SUPPORTED

from .conftest import ALL_ROLES

pytestmark = pytest.mark.plan

# The only commands allowed before the refusal: the facts deploy.py reads to validate.
RELEASE = 'cd /etc/ && for file in $(ls -pdL *-release | grep -v /); do echo "/etc/${file}"; cat "/etc/${file}"; echo ---; done'
PID1 = "cat /proc/1/comm 2>/dev/null || echo unknown"
WHEEL_URL = "https://wheels.lab/zeroc_ice-3.6.5-cp312-cp312-manylinux_2_28_x86_64.whl"


class LocalFile:
    """A file made in the test's tmp_path, for options that take a local path."""

    def __init__(self, name: str, text: str = "not what the option wants\n"):
        self.name, self.text = name, text

    def __repr__(self):
        return f"<file {self.name}>"

    def make(self, directory) -> str:
        path = directory / self.name
        path.write_text(self.text)
        return str(path)


def bad(option, value, problem, **more):
    """A case: ``option`` (plus ``more`` options) set so that ``option`` is refused."""
    return pytest.param(option, {option: value, **more}, problem, id=f"{option}={value!r}"[:60])


BAD_OPTIONS = [
    bad("omero_service_manager", "upstart", "must be auto, systemd or supervisord"),
    bad("omero_extra_ca_certificates", "/etc/ssl/lab-ca.pem", "must be a list of file paths"),
    bad("omero_extra_ca_certificates", ["/nonexistent/lab-ca.pem"], "is not a file"),
    bad("omero_extra_ca_certificates", [LocalFile("lab-ca.pem")], "holds no PEM certificate"),
    bad("omero_http_proxy", "proxy.lab:3128", "must be an http(s) URL"),
    bad("omero_pip_index_url", "ftp://mirror.lab/simple", "must be an http(s) URL"),
    bad("omero_db_name", "OMERO-db", "not a plain lower-case PostgreSQL name"),
    bad("omero_db_user", "omero; drop", "not a plain lower-case PostgreSQL name"),
    bad("omero_db_port", 70000, "must be a TCP port number"),
    bad("omero_db_port", "5432", "must be a TCP port number"),
    *(bad(option, "relative/dir", "must be an absolute path")
      for option in ("omero_wheel_dir", "omero_ice_home", "omero_server_basedir", "omero_data_dir",
                     "omero_server_db_dump_dir", "omero_web_basedir")),
    *(bad(option, "Omero Server", "not a valid user or group name")
      for option in ("omero_server_user", "omero_web_user", "omero_group")),
    bad("omero_java_version", 8, "must be 11, 17 or 21"),
    bad("omero_web_workers", 0, "must be a positive whole number"),
    bad("omero_web_workers", "4", "must be a positive whole number"),
    bad("omero_web_bind", "4080", "must be address:port"),
    bad("omero_web_bind", "127.0.0.1:gunicorn", "does not end in a TCP port number"),
    bad("omero_nginx_listen", "0.0.0.0:70000", "does not end in a TCP port number"),
    bad("omero_server_config", {"db.host": "elsewhere"}, "mapping of OMERO setting names"),
    bad("omero_web_config", ["omero.web.debug"], "mapping of OMERO setting names"),
    bad("omero_server_config", {"omero.mail.from": "o'brien@lab"}, "holds a single quote"),
    bad("omero_root_password", "it's-long-enough-though", "without a single quote"),
    bad("omero_py_version", "latest", "must be a release like 5.23.0"),
    bad("omero_web_version", "5.33", "must be a release like 5.23.0"),
    bad("omero_db_password", "short", "well-known or short password"),
    bad("omero_db_password", "pässwörd-long-enough", "must be printable ASCII"),
    bad("omero_root_password", "changeme", "well-known or short password"),
    bad("omero_root_password", "tab\tin-the-password", "must be printable ASCII"),
    bad("omero_icepy_wheel_sha256", "0" * 64, "is set but omero_icepy_wheel is not"),
    bad("omero_icepy_wheel", LocalFile("icepy.whl"), "is not like zeroc_ice-3.6.5-<tags>.whl"),
    pytest.param("omero_icepy_wheel_sha256", {"omero_icepy_wheel": WHEEL_URL}, "64 hex digit sha256",
                 id="omero_icepy_wheel_sha256-missing"),
    bad("omero_server_artifact", None, "is required on this host"),
    bad("omero_server_artifact", "/nonexistent/OMERO.server-5.6.16-ice36.zip",
        "neither an http(s) URL nor an existing file"),
    bad("omero_server_artifact", LocalFile("OMERO.server-5.6.16.zip"),
        "is not like OMERO.server-<version>-ice36.zip"),
    bad("omero_server_sha256", "abc123", "64 hex digit sha256"),
    bad("omero_server_sha256", "0" * 64, "does not match"),
    bad("omero_ice_artifact", None, "is required on this host"),
    bad("omero_ice_sha256", "f" * 64, "does not match"),
]


def assert_refused_first(error, host="aio", allowed=(RELEASE, PID1)):
    """The refused host was sent nothing but the facts read for validation: no operation
    was even planned on it (planning one reads its facts), let alone run."""
    assert set(error.runs[host].commands) <= set(allowed)


@pytest.mark.parametrize("option, data, problem", BAD_OPTIONS)
def test_bad_option_refused(deploy, tmp_path, option, data, problem):
    data = {key: [v.make(tmp_path) if isinstance(v, LocalFile) else v for v in value]
            if isinstance(value, list) else value.make(tmp_path) if isinstance(value, LocalFile) else value
            for key, value in data.items()}
    with pytest.raises(OmeroOptionError, match=f"option {option} \\(host @fake/aio\\): ") as caught:
        deploy({"aio": (ALL_ROLES, data)}, execute=False)
    assert caught.value.option == option
    assert problem in str(caught.value)
    assert_refused_first(caught.value)


def test_server_host_without_artifacts(deploy):
    no_artifacts = {key: None for key in ("omero_server_artifact", "omero_server_sha256",
                                          "omero_ice_artifact", "omero_ice_sha256")}
    with pytest.raises(OmeroOptionError, match="option omero_server_artifact .*is required") as caught:
        deploy({"db": (("omero_database",), {}), "server": (("omero_server",), no_artifacts)},
               execute=False)
    assert_refused_first(caught.value, host="server")


@pytest.mark.parametrize("os_name, shown", [("centos7", "CentOS 7"), ("alpine3.20", "Alpine 3.20.3")])
def test_unsupported_os_refused(deploy, os_name, shown):
    with pytest.raises(OmeroDeployError, match="unsupported operating system") as caught:
        deploy({"aio": (ALL_ROLES, {})}, os_name=os_name, execute=False)
    message = str(caught.value)
    assert shown in message and SUPPORTED in message
    for supported in ("Ubuntu 22.04", "Ubuntu 24.04", "Debian 12", "Rocky Linux"):
        assert supported in message
    assert_refused_first(caught.value, allowed=(RELEASE,))


@pytest.mark.parametrize("pid1", ["bash", "tini", "supervisord"])
def test_systemd_asked_for_where_it_is_not_pid1(deploy, pid1):
    with pytest.raises(OmeroOptionError, match=f"option omero_service_manager .*PID 1 is '{pid1}'"):
        deploy({"aio": (ALL_ROLES, {"omero_service_manager": "systemd"})}, pid1=pid1, execute=False)


def test_two_database_hosts_refused(deploy):
    with pytest.raises(OmeroDeployError, match="group omero_database has 2 hosts") as caught:
        deploy({"db1": (("omero_database",), {}), "db2": (("omero_database",), {})}, execute=False)
    assert_refused_first(caught.value, host="db1")


def test_server_without_database_host_refused(deploy):
    with pytest.raises(OmeroDeployError, match="is in omero_server but the inventory has no omero_database"):
        deploy({"server": (("omero_server", "omero_web"), {})}, execute=False)


def test_misspelt_option_is_refused_with_a_suggestion(deploy):
    with pytest.raises(OmeroOptionError, match="did you mean omero_db_password") as caught:
        deploy({"aio": (ALL_ROLES, {"omero_db_pasword": "a-long-enough-password"})}, execute=False)
    assert caught.value.option == "omero_db_pasword"
    assert_refused_first(caught.value)
