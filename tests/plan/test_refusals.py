"""Bad inputs stop the deploy while it is planned, before any host is touched, with a
message naming the option (or saying what is wrong with the inventory or host)."""

import os
import re

import pytest
from pyinfra.facts.hardware import Cpus

from deploys.errors import OmeroDeployError, OmeroOptionError
from deploys.platform import SUPPORTED
from facts.omero import HostAddresses

from .conftest import ALL_ROLES
from .harness import unbatched

pytestmark = pytest.mark.plan

# The only commands allowed before the refusal: the facts deploy.py reads to validate.
RELEASE = ('cd /etc/ && for file in $(ls -pdL *-release | grep -v /); do echo "/etc/${file}"; '
           'cat "/etc/${file}"; echo ---; done')
PID1 = "cat /proc/1/comm 2>/dev/null || echo unknown"
CPUS, ADDRESSES = Cpus().command(), HostAddresses().command()
WHEEL_URL = "https://wheels.lab/zeroc_ice-3.6.5-cp312-cp312-manylinux_2_28_x86_64.whl"


CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIBlab\n-----END CERTIFICATE-----\n"
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEkey\n-----END RSA PRIVATE KEY-----\n"


class LocalFile:
    """A file made in the test's tmp_path, for options that take a local path."""

    def __init__(self, name: str, text: str = "not what the option wants\n"):
        self.name, self.text = name, text

    def __repr__(self):
        return f"<file {self.name}>"

    def make(self, directory) -> str:
        path = directory / self.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.text)
        return str(path)


def bad(option, value, problem, **more):
    """A case: ``option`` (plus ``more`` options) set so that ``option`` is refused."""
    return pytest.param(option, {option: value, **more}, problem, id=f"{option}={value!r}"[:60])


def clash(option, data, problem):
    """A case: options each good alone, refused together (the error names ``option``)."""
    return pytest.param(option, data, problem, id=f"{option}:{data!r}"[:60])


PATH_OPTIONS = ("omero_wheel_dir", "omero_ice_home", "omero_server_basedir", "omero_data_dir",
                "omero_server_db_dump_dir", "omero_web_basedir", "omero_secrets_dir")
ACCOUNT_OPTIONS = ("omero_server_user", "omero_web_user", "omero_group")
PASSWORD_OPTIONS = ("omero_db_password", "omero_root_password", "omero_backup_password")
HOST_DIR_OPTIONS = ("omero_wheel_dir", "omero_ice_home", "omero_server_basedir", "omero_data_dir",
                    "omero_server_db_dump_dir", "omero_web_basedir", "omero_analysis_basedir", "omero_backup_local_dir")

BAD_OPTIONS = [
    # -- choices and whole numbers (True is no number) -----------------------------------------
    bad("omero_service_manager", "upstart", "must be auto, systemd or supervisord"),
    bad("omero_image_build", "yes", "must be True or False"),
    bad("omero_image_build", True, "is for scripts/build-image's container only"),  # a systemd host
    bad("omero_java_version", 8, "must be 11, 17 or 21, not 8"),
    bad("omero_java_version", True, "must be 11, 17 or 21, not True"),
    bad("omero_java_version", 17.0, "must be 11, 17 or 21, not 17.0"),
    bad("omero_db_port", 70000, "must be a TCP port number (a whole number 1-65535), not 70000"),
    bad("omero_db_port", 0, "must be a TCP port number"),
    bad("omero_db_port", "5432", "must be a TCP port number (a whole number 1-65535), not '5432'"),
    bad("omero_db_port", True, "must be a TCP port number (a whole number 1-65535), not True"),
    bad("omero_web_workers", 0, "must be a whole number from 1 to 64, not 0"),
    bad("omero_web_workers", "4", "must be a whole number from 1 to 64, not '4'"),
    bad("omero_web_workers", True, "must be a whole number from 1 to 64, not True"),
    # -- endpoints: the whole value parsed, not only what follows the last ':' -------------------
    bad("omero_web_bind", "4080", "'4080' has no address: must be address:port"),
    bad("omero_web_bind", "127.0.0.1:gunicorn", "'gunicorn' is not a TCP port number (1-65535)"),
    bad("omero_web_bind", "127.0.0.1:4080 ; include /etc/passwd", "holds ' '; an endpoint"),
    bad("omero_web_bind", "127.0.0.1;:4080", "holds ';'; an endpoint (address:port)"),
    bad("omero_web_bind", "127.0.0.1:4080\n", "holds '\\n'; an endpoint"),
    bad("omero_web_bind", "evil}host:4080", "holds '}'; an endpoint"),
    bad("omero_web_bind", "::1:4080", "put an IPv6 address in brackets, like [::1]:4080"),
    bad("omero_web_bind", "[::1]", "'[::1]' is not [IPv6 address]:port"),
    bad("omero_web_bind", "[10.0.0.1]:4080", "is not [IPv6 address]:port"),
    bad("omero_web_bind", "-web-:4080", "'-web-' is neither an IP address nor a host name"),
    bad("omero_web_bind", "999.1.1.1:4080", "'999.1.1.1' is neither an IP address nor a host name"),
    bad("omero_nginx_listen", "0.0.0.0:70000", "'70000' is not a TCP port number (1-65535)"),
    bad("omero_nginx_listen", "0", "'0' is not a TCP port number"),
    bad("omero_nginx_listen", "80 default_server", "holds ' '; an endpoint ([address:]port)"),
    bad("omero_nginx_listen", '"80"', "holds '\"'; an endpoint"),
    bad("omero_nginx_listen", "80;}", "holds ';'; an endpoint"),
    bad("omero_nginx_listen", True, "must be a string, not bool"),
    bad("omero_nginx_listen", "4080", "port 4080 is omero_web_bind's too"),
    bad("omero_nginx_listen", "[::]:4080", "port 4080 is omero_web_bind's too",
        omero_web_bind="[::1]:4080"),
    # -- paths: absolute, plain, no '..', not a system directory itself --------------------------
    *(bad(option, "relative/dir", "must be an absolute path") for option in PATH_OPTIONS),
    bad("omero_data_dir", "/", "/ is a system directory; use a directory of its own below it"),
    bad("omero_data_dir", "/var/lib/", "/var/lib is a system directory"),
    bad("omero_ice_home", "/opt", "/opt is a system directory"),
    bad("omero_server_basedir", "//usr", "/usr is a system directory"),
    bad("omero_web_basedir", "/tmp/.", "/tmp is a system directory"),
    bad("omero_wheel_dir", "/etc", "/etc is a system directory"),
    bad("omero_server_db_dump_dir", "/opt/omero/../../root", "holds '..'"),
    bad("omero_web_basedir", "/opt/omero web", "holds ' '; a path holds only letters, digits"),
    bad("omero_ice_home", "/opt/ice;reboot", "holds ';'; a path"),
    bad("omero_wheel_dir", "/opt/$(reboot)", "holds '$'; a path"),
    bad("omero_data_dir", "/OMERO\n", "holds '\\n'; a path"),
    bad("omero_data_dir", "/OMERO'", "holds \"'\"; a path"),
    bad("omero_secrets_dir", "~", "holds '~'"),
    bad("omero_secrets_dir", "~/", "is the home directory itself"),
    bad("omero_secrets_dir", "~/../other", "holds '..'"),
    bad("omero_secrets_dir", "~bob/secrets", "holds '~'"),
    bad("omero_data_dir", 42, "must be a string, not int"),
    # -- addresses and host names (RFC 1123 labels or IP literals) -------------------------------
    bad("omero_address", "db host", "holds ' '; an address holds only"),
    bad("omero_address", "db.lab;reboot", "holds ';'"),
    bad("omero_address", "[::1]", "write an IPv6 address without brackets here"),
    bad("omero_address", "-db.lab", "'-db.lab' is neither an IP address nor a host name"),
    bad("omero_address", "db..lab", "'db..lab' is neither an IP address nor a host name"),
    bad("omero_address", "", "'' is neither an IP address nor a host name"),
    bad("omero_address", "a" * 64 + ".lab", "is neither an IP address nor a host name"),
    bad("omero_web_server_host", "omero_server", "holds '_'"),
    bad("omero_web_server_host", "10.0.0.1\n", "holds '\\n'"),
    bad("omero_nginx_server_name", "omero.lab; return 301", "holds ';'; server names hold only"),
    bad("omero_nginx_server_name", "omero.lab\nlisten 81", "holds '\\n'"),
    bad("omero_nginx_server_name", "~^(?<name>.+)$", "holds '~'"),
    bad("omero_nginx_server_name", "*omero.lab", "'*omero.lab' is not a host name"),
    bad("omero_nginx_server_name", "omero.*", "'omero.*' is not a host name"),
    bad("omero_nginx_server_name", "  ", "is empty; '_' matches any name"),
    # -- users and groups: valid, not the system's, not each other -------------------------------
    *(bad(option, "Omero Server", "not a valid user or group name") for option in ACCOUNT_OPTIONS),
    bad("omero_server_user", "root", "'root' is a system account"),
    bad("omero_server_user", "postgres", "'postgres' is a system account"),
    bad("omero_web_user", "www-data", "'www-data' is a system account"),
    bad("omero_web_user", "nginx", "'nginx' is a system account"),
    bad("omero_web_user", "nobody", "'nobody' is a system account"),
    bad("omero_group", "users", "'users' is a system account"),
    bad("omero_group", "systemd-journal", "is a system account"),
    bad("omero_server_user", "omero-server\n", "not a valid user or group name"),
    clash("omero_web_user", {"omero_web_user": "omero-server"}, "is also omero_server_user"),
    clash("omero_server_user", {"omero_server_user": "omero"}, "'omero' is also omero_group"),
    clash("omero_web_user", {"omero_group": "omero-web"}, "'omero-web' is also omero_group"),
    # -- PostgreSQL names: plain, not reserved --------------------------------------------------
    bad("omero_db_name", "OMERO-db", "not a plain lower-case PostgreSQL name"),
    bad("omero_db_user", "omero; drop", "not a plain lower-case PostgreSQL name"),
    bad("omero_db_name", "omero\n", "not a plain lower-case PostgreSQL name"),
    *(bad(option, name, f"'{name}' is reserved in PostgreSQL")
      for option, name in (("omero_db_name", "postgres"), ("omero_db_name", "template1"),
                           ("omero_db_name", "template0"), ("omero_db_user", "all"),
                           ("omero_db_user", "public"), ("omero_db_user", "pg_monitor"),
                           ("omero_db_user", "user"), ("omero_db_name", "select"),
                           ("omero_db_name", "replication"), ("omero_db_user", "samerole"))),
    # -- OMERO settings: omero.* keys, JSON-able values without control characters ---------------
    bad("omero_server_config", {"db.host": "elsewhere"}, "'db.host' is not an OMERO setting name"),
    bad("omero_web_config", ["omero.web.debug"], "must be a mapping of OMERO setting names"),
    bad("omero_web_config", {"omero.web.debug\nconfig set omero.db.host evil": True},
        "is not an OMERO setting name"),
    bad("omero_web_config", {"omero.web.x y": 1}, "'omero.web.x y' is not an OMERO setting name"),
    bad("omero_server_config", {3: "x"}, "3 is not an OMERO setting name"),
    bad("omero_server_config", {"omero.mail.from": "o'brien@lab"},
        "the value of omero.mail.from holds a single quote, which the config file's single-quoted"),
    bad("omero_web_config", {"omero.web.ui.top_links": [["O'Brien lab", "webindex"]]},
        "the value of omero.web.ui.top_links holds a single quote"),
    bad("omero_server_config", {"omero.mail.from": "a@lab\nconfig set omero.db.host evil"},
        "the value of omero.mail.from holds the control character '\\n'"),
    bad("omero_web_config", {"omero.web.ui.top_links": [["Data", "webindex\r"]]},
        "the value of omero.web.ui.top_links holds the control character '\\r'"),
    bad("omero_web_config", {"omero.web.login_logo": "tab\there"}, "control character '\\t'"),
    bad("omero_web_config", {"omero.web.ui.top_links": {"Data": "\u2028"}},
        "control character '\\u2028'"),
    bad("omero_web_config", {"omero.web.public.user": None}, "holds None, which is not a string"),
    bad("omero_server_config", {"omero.x": b"bytes"}, "holds b'bytes', which is not a string"),
    bad("omero_web_config", {"omero.web.x": {1: "a"}}, "holds a mapping key 1; JSON keys are strings"),
    bad("omero_server_config", {"omero.x": float("nan")}, "holds nan, which JSON has no form for"),
    # -- URLs: http(s), a host, nothing apt, dnf, pip or a shell would read --------------------
    bad("omero_http_proxy", "proxy.lab:3128", "must be an http(s) URL with a host"),
    bad("omero_pip_index_url", "ftp://mirror.lab/simple", "must be an http(s) URL"),
    bad("omero_http_proxy", "http://:3128", "must be an http(s) URL with a host"),
    bad("omero_http_proxy", "http://proxy.lab:3128\nAcquire::http::Pipeline-Depth 0",
        "holds '\\n'; a URL here holds only"),
    bad("omero_http_proxy", "http://proxy lab:3128", "holds ' '"),
    bad("omero_http_proxy", "http://proxy.lab:3128;reboot", "holds ';'"),
    bad("omero_http_proxy", "http://proxy.lab:3128`reboot`", "holds '`'"),
    bad("omero_http_proxy", "http://proxy.lab:99999", "is not a URL (Port out of range"),
    bad("omero_http_proxy", "http://pro_xy.lab:3128", "holds '_'; an address holds only"),
    bad("omero_pip_index_url", 'https://pypi.lab/simple"', "holds '\"'"),
    bad("omero_pip_index_url", "https://pypi.lab/simple?a=1&b=2", "holds '?'"),
    # -- CA certificates: PEM certificates only, each installed under its own name ---------------
    bad("omero_extra_ca_certificates", "/etc/ssl/lab-ca.pem", "must be a list of file paths"),
    bad("omero_extra_ca_certificates", [42], "must be a list of file paths"),
    bad("omero_extra_ca_certificates", ["/nonexistent/lab-ca.pem"], "is not a file"),
    bad("omero_extra_ca_certificates", [LocalFile("lab-ca.pem")], "holds no PEM certificate"),
    bad("omero_extra_ca_certificates", [LocalFile("lab-ca.pem", CERTIFICATE + PRIVATE_KEY)],
        "lab-ca.pem holds a private key; give the CA certificate alone"),
    bad("omero_extra_ca_certificates", [LocalFile("a/lab-ca.pem", CERTIFICATE),
                                        LocalFile("b/lab-ca.crt", CERTIFICATE)],
        "b/lab-ca.crt would both be installed as omero-extra-lab-ca.crt; rename one"),
    bad("omero_extra_ca_certificates", [LocalFile("lab ca.pem", CERTIFICATE)],
        "holds ' '; "),
    # -- releases ---------------------------------------------------------------------------------
    bad("omero_py_version", "latest", "must be a release like 5.23.0"),
    bad("omero_web_version", "5.33", "must be a release like 5.23.0"),
    bad("omero_py_version", "5.23.0\n", "must be a release like 5.23.0"),
    bad("omero_web_version", 5.33, "must be a release like 5.23.0, not 5.33"),
    bad("omero_dropbox_version", "5.7", "must be a release like 5.23.0, not '5.7'"),
    # -- switches: True or False, not what reads as one -------------------------------------------
    bad("omero_server_dropbox", "yes", "must be True or False, not 'yes'"),
    bad("omero_server_dropbox", "False", "must be True or False, not 'False'"),
    bad("omero_server_dropbox", 1, "must be True or False, not 1"),
    bad("omero_server_dropbox", None, "must be True or False, not None"),
    bad("omero_nginx_hsts", "on", "must be True or False, not 'on'"),
    bad("omero_backup_link_targets", "no", "must be True or False, not 'no'"),
    # -- passwords (never shown) ------------------------------------------------------------------
    bad("omero_db_password", "Sh0rt!", "too weak"),
    bad("omero_db_password", "pässwörd-long-enough", "must be printable ASCII"),
    bad("omero_db_password", 123456789012345, "must be a string, not int"),
    bad("omero_root_password", "it's-long-enough-though", "without a single quote"),
    bad("omero_root_password", "changeme", "too weak"),
    bad("omero_root_password", "tab\tin-the-password", "must be printable ASCII"),
    # -- artifacts --------------------------------------------------------------------------------
    bad("omero_icepy_wheel_sha256", "0" * 64, "is set but omero_icepy_wheel is not"),
    bad("omero_icepy_wheel", LocalFile("icepy.whl"), "is not like zeroc_ice-3.6.5-<tags>.whl"),
    bad("omero_icepy_wheel", "https://wheels.lab/zeroc_ice-3.6.5-cp312 x.whl", "holds ' '"),
    pytest.param("omero_icepy_wheel_sha256", {"omero_icepy_wheel": WHEEL_URL}, "64 hex digit sha256",
                 id="omero_icepy_wheel_sha256-missing"),
    bad("omero_server_artifact", None, "is required on this host"),
    bad("omero_server_artifact", "/nonexistent/OMERO.server-5.6.16-ice36.zip",
        "neither an http(s) URL nor an existing file"),
    bad("omero_server_artifact", LocalFile("OMERO.server-5.6.16.zip"),
        "is not like OMERO.server-<version>-ice36.zip"),
    bad("omero_server_artifact", "https://dl.lab/OMERO.server-5.6.16-ice36.zip\n", "holds '\\n'"),
    bad("omero_server_sha256", "abc123", "64 hex digit sha256"),
    bad("omero_server_sha256", "0" * 64, "does not match"),
    bad("omero_server_sha256", "0" * 64 + "\n", "64 hex digit sha256"),
    bad("omero_ice_artifact", None, "is required on this host"),
    bad("omero_ice_artifact", LocalFile("Ice 3.6.5;x.tar.gz"), "is not like <name of letters"),
    bad("omero_ice_sha256", "f" * 64, "does not match"),
    # -- backups ----------------------------------------------------------------------------------
    bad("omero_backup_schedule", "25:00", "is not a schedule: HH:MM (daily), Mon HH:MM (weekly"),
    bad("omero_backup_schedule", "daily", "is not a schedule"),
    bad("omero_backup_schedule", "every 0m", "is not a schedule"),
    bad("omero_backup_schedule", "0 3 * * *", "is not a schedule"),
    bad("omero_backup_check_schedule", "Sunday 04:30", "is not a schedule"),
    bad("omero_backup_check_schedule", 430, "must be a string, not int"),
    bad("omero_backup_keep", {"daily": -1}, "daily must be a whole number 0 or more, not -1"),
    bad("omero_backup_keep", {"daily": True}, "daily must be a whole number 0 or more, not True"),
    bad("omero_backup_keep", {"yearly": 2}, "must be a mapping with keys among daily, weekly, monthly"),
    bad("omero_backup_keep", {"daily": 0, "weekly": 0}, "keeps no backup at all"),
    bad("omero_backup_keep", 7, "must be a mapping"),
    bad("omero_backup_check_read_data", 101, "0 to 100, not 101"),
    bad("omero_backup_check_read_data", "10%", "0 to 100, not '10%'"),
    bad("omero_backup_local_dir", "backups", "must be an absolute path"),
    bad("omero_backup_local_dir", "/var", "is a system directory"),
    bad("omero_backup_remote_dir", "/srv/omero backup", "holds ' '"),
    bad("omero_backup_user", "root", "is a system account"),
    bad("omero_backup_password", "changeme", "too weak",
        omero_backup_local_dir="/srv/omero-backup"),
    bad("omero_backup_password", "it's-long-enough-though", "without a single quote",
        omero_backup_local_dir="/srv/omero-backup"),
    # -- the analysis environment ---------------------------------------------------------------
    bad("omero_analysis_server_name", "*.lab.example.org", "is not a host name (the hub's own"),
    bad("omero_analysis_server_name", "_", "is not a host name"),
    bad("omero_analysis_server_name", "10.0.0.5", "is not a host name"),
    bad("omero_analysis_server_name", "jupyter.lab.example.org hub.lab", "is not a host name"),
    bad("omero_analysis_server_name", "jupyter.lab/;", "is not a host name"),
    bad("omero_analysis_server_name", "-hub.lab", "is not a host name"),
    bad("omero_analysis_server_name", "", "is not a host name"),
    bad("omero_analysis_server_name", ["jupyter.lab"], "must be a string, not list"),
    bad("omero_analysis_memory_limit", "128M", "is not a memory size from 256M to 1024G"),
    bad("omero_analysis_memory_limit", "2T", "is not a memory size from 256M to 1024G"),
    bad("omero_analysis_memory_limit", "1025G", "is not a memory size from 256M to 1024G"),
    bad("omero_analysis_memory_limit", "2 G", "is not a memory size"),
    bad("omero_analysis_memory_limit", "infinity", "is not a memory size"),
    bad("omero_analysis_memory_limit", "50%", "is not a memory size"),
    bad("omero_analysis_memory_limit", 2147483648, "must be a string, not int"),
    bad("omero_analysis_cpu_limit", 0, "from 0.1 to 256, like 1 or 0.5, not 0"),
    bad("omero_analysis_cpu_limit", 0.05, "not 0.05"),
    bad("omero_analysis_cpu_limit", 257, "not 257"),
    bad("omero_analysis_cpu_limit", float("nan"), "not nan"),
    bad("omero_analysis_cpu_limit", "2", "not '2'"),
    bad("omero_analysis_cpu_limit", True, "not True"),
    bad("omero_analysis_tasks_limit", 0, "from 64 to 65536, not 0"),
    bad("omero_analysis_tasks_limit", 100000, "from 64 to 65536, not 100000"),
    bad("omero_analysis_tasks_limit", "infinity", "not 'infinity'"),
    bad("omero_systemdspawner_version", "1.0", "must be a release like 5.23.0"),
    bad("omero_analysis_users_group", "root", "is a system account"),
    bad("omero_analysis_users_group", "Lab Members", "is not a valid user or group name"),
    bad("omero_analysis_basedir", "/opt", "is a system directory"),
    bad("omero_analysis_basedir", "analysis", "must be an absolute path"),
    bad("omero_analysis_port", 80, "must be a whole number from 1024 to 65533, not 80"),
    bad("omero_analysis_port", 65534, "must be a whole number from 1024 to 65533"),
    bad("omero_analysis_port", "8000", "must be a whole number from 1024 to 65533, not '8000'"),
    bad("omero_analysis_port", True, "not True"),
    bad("omero_analysis_omero_host", "omero server", "holds ' '"),
    bad("omero_analysis_omero_host", "[::1]", "without brackets"),
    bad("omero_jupyterhub_version", "6.1", "must be a release like 5.23.0"),
    bad("omero_jupyterlab_version", "latest", "must be a release like 5.23.0"),
    bad("omero_ezomero_version", 3, "must be a release like 5.23.0"),
    bad("omero_analysis_proxy_version", "5.1.0; rm -rf /", "must be a release like 5.23.0"),
    bad("omero_npm_registry_url", "registry.lab", "must be an http(s) URL with a host"),
    clash("omero_analysis_port", {"omero_analysis_port": 4078}, "uses ports 4078-4080, and 4080 is omero_web_bind's"),
    clash("omero_analysis_port", {"omero_analysis_port": 8442, "omero_nginx_listen": "8443"},
          "and 8443 is omero_nginx_listen's"),
    # -- values that pass their grammar but are harmful where they are used ---------------------
    # Directories handed to service accounts inside what the system or the deploy keeps.
    *(bad(option, path, f"{path} is inside {tree}, which the system or its packages keeps")
      for option in HOST_DIR_OPTIONS
      for path, tree in (("/etc/systemd/system/omero", "/etc"), ("/usr/local/sbin/omero", "/usr"),
                         ("/etc/sudoers.d/omero", "/etc"), ("/root/.ssh/omero", "/root"),
                         ("/lib/systemd/system/omero", "/lib"), ("/tmp/omero", "/tmp"),
                         ("/dev/shm/omero", "/dev"), ("/var/spool/cron/omero", "/var/spool"))),
    *(bad("omero_data_dir", path, "is inside") for path in (
        "/boot/omero", "/run/omero", "/var/tmp/omero", "/usr/lib/omero", "/var/lib/postgresql/omero",
        "/var/lib/dpkg/omero", "/var/lib/systemd/omero", "/proc/omero", "/sys/omero", "/var/log/journal/omero",
        "/var/lib/omero-pyinfra/data", "/opt/omero/downloads/data", "/var/lib/omero-jupyterhub/data",
        "/var/cache/omero-backup/data", "/var/www/omero-acme/data", "/etc/omero-backup/data")),
    # ... overlapping root's code and configuration, or each other.
    bad("omero_data_dir", "/opt/omero/server", "holds omero_server_basedir (/opt/omero/server), root's"),
    bad("omero_data_dir", "/opt/omero", "holds omero_server_basedir"),
    bad("omero_data_dir", "/opt/omero/server/venv3/data", "overlaps omero_server_basedir's venv3"),
    bad("omero_data_dir", "/opt/omero/server/config/OMERO", "overlaps omero_server_basedir's config"),
    bad("omero_data_dir", "/opt/omero/server/OMERO.server-5.6.16-ice36/var",
        "is inside an unpacked OMERO.server (/opt/omero/server/OMERO.server-*)"),
    bad("omero_data_dir", "/opt/omero/web", "overlaps omero_web_basedir (/opt/omero/web)"),
    bad("omero_data_dir", "/opt/omero/web/OMERO.web/var", "overlaps omero_web_basedir"),
    bad("omero_data_dir", "/opt/ice-3.6.5/data", "overlaps omero_ice_home"),
    bad("omero_data_dir", "/opt/omero/wheels", "overlaps omero_wheel_dir"),
    bad("omero_data_dir", "/opt/omero/analysis/OMERO", "overlaps omero_analysis_basedir"),
    bad("omero_server_db_dump_dir", "/opt/omero/server/venv3", "overlaps omero_server_basedir's venv3"),
    bad("omero_server_db_dump_dir", "/OMERO/dumps", "overlaps omero_data_dir (/OMERO)"),
    bad("omero_server_db_dump_dir", "/opt/omero/web/dumps", "overlaps omero_web_basedir"),
    bad("omero_backup_local_dir", "/OMERO/backup", "overlaps omero_data_dir (/OMERO)"),
    bad("omero_backup_local_dir", "/OMERO", "overlaps omero_data_dir"),
    bad("omero_backup_local_dir", "/opt/omero/server/backups/restic", "overlaps omero_server_db_dump_dir"),
    bad("omero_backup_local_dir", "/opt/omero/server/config", "overlaps omero_server_basedir's config"),
    bad("omero_web_basedir", "/opt/omero/server/web", "overlaps omero_server_basedir (/opt/omero/server)"),
    bad("omero_ice_home", "/opt/omero/server/ice", "overlaps omero_server_basedir"),
    bad("omero_wheel_dir", "/opt/omero/web/wheels", "overlaps omero_web_basedir"),
    bad("omero_analysis_basedir", "/opt/omero/web/analysis", "overlaps omero_web_basedir"),
    clash("omero_web_basedir", {"omero_server_basedir": "/opt/omero"}, "overlaps omero_server_basedir (/opt/omero)"),
    # ... one account or group for two roles.
    bad("omero_backup_user", "omero-server", "is also omero_server_user"),
    bad("omero_backup_user", "omero-web", "is also omero_web_user"),
    bad("omero_backup_user", "omero", "is also omero_group"),
    bad("omero_analysis_users_group", "omero", "is also omero_group (the group sharing the repository)"),
    bad("omero_analysis_users_group", "omero-web", "is also omero_web_user"),
    bad("omero_analysis_users_group", "omero-server", "is also omero_server_user"),
    bad("omero_analysis_users_group", "omero-backup", "is also omero_backup_user"),
    clash("omero_backup_user", {"omero_group": "omero-backup"}, "'omero-backup' is also omero_group"),
    # ... pg_hba.conf's keywords where an address goes (pg_hba would admit every host).
    *(bad("omero_address", word, "is a pg_hba.conf keyword") for word in ("all", "samenet", "samehost", "ALL")),
    bad("omero_web_server_host", "samenet", "is a pg_hba.conf keyword"),
    # ... gunicorn (which trusts nginx's headers) reachable from elsewhere.
    *(bad("omero_web_bind", endpoint, "is not a loopback address") for endpoint in (
        "0.0.0.0:4080", "[::]:4080", "10.0.0.5:4080", "192.168.1.10:8080", "[2001:db8::10]:4080",
        "web-1.lab.example.org:4080", "omero.lab.example.org:4080", "8.8.8.8:4080")),
    bad("omero_web_workers", 65, "must be a whole number from 1 to 64, not 65"),
    bad("omero_web_workers", 100000, "must be a whole number from 1 to 64"),
    # ... credentials in an artifact URL (curl's command line is every account's to see).
    bad("omero_icepy_wheel", "https://alice:s3cret@wheels.lab/zeroc_ice-3.6.5-cp312-cp312-linux_x86_64.whl",
        "carries credentials", omero_icepy_wheel_sha256="0" * 64),
    bad("omero_server_artifact", "https://alice:s3cret@dl.lab/OMERO.server-5.6.16-ice36.zip",
        "carries credentials", omero_server_sha256="0" * 64),
    bad("omero_ice_artifact", "https://token@dl.lab/Ice-3.6.5-debian12.tar.gz", "carries credentials",
        omero_ice_sha256="0" * 64),
    # ... passwords a guesser tries first.
    *(bad(option, password, "too weak", **({"omero_backup_local_dir": "/srv/omero-backup"}
                                           if option == "omero_backup_password" else {}))
      for option in PASSWORD_OPTIONS
      for password in ("passwordpassword", "123456789012", "abcabcabcabc", "Password1234", "qwertyuiopas",
                       "changeme2024")),
]


def assert_refused_first(error, host="aio", allowed=(RELEASE, PID1)):
    """The refused host was sent nothing but the facts read for validation: no operation
    was even planned on it (planning one reads its facts), let alone run."""
    assert set(unbatched(error.runs[host].commands)) <= set(allowed)


@pytest.mark.parametrize("option, data, problem", BAD_OPTIONS)
def test_bad_option_refused(deploy, tmp_path, option, data, problem):
    data = {key: [v.make(tmp_path) if isinstance(v, LocalFile) else v for v in value]
            if isinstance(value, list) else value.make(tmp_path) if isinstance(value, LocalFile) else value
            for key, value in data.items()}
    with pytest.raises(OmeroOptionError, match=f"option {option} \\(host @fake/aio\\): ") as caught:
        deploy({"aio": (ALL_ROLES, data)}, execute=False)
    assert caught.value.option == option
    assert problem in str(caught.value)
    # A good value to copy, except for secrets (no example password is a good one).
    assert (caught.value.example is None) == (option in PASSWORD_OPTIONS)
    if option in PASSWORD_OPTIONS:
        assert str(data[option]) not in str(caught.value)
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
    assert_refused_first(caught.value)


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


@pytest.mark.parametrize("os_name, refused", [("rocky9", True), ("debian12", False), ("ubuntu24.04", False)])
def test_proxy_password_refused_where_dnf_would_show_it(deploy, os_name, refused):
    """apt's proxy file is root's (0600); dnf's proxy can only go in the world-readable dnf.conf."""
    data = {"omero_http_proxy": "http://lab:s3cret@proxy.lab:3128"}
    if not refused:
        deploy({"aio": (ALL_ROLES, data)}, os_name=os_name, execute=False)
        return
    with pytest.raises(OmeroOptionError, match="option omero_http_proxy .*world-readable /etc/dnf/dnf.conf") as caught:
        deploy({"aio": (ALL_ROLES, data)}, os_name=os_name, execute=False)
    assert "s3cret" not in str(caught.value)
    assert_refused_first(caught.value)


ACCOUNTS = re.compile(r"^getent passwd ")
DIRECTORIES = re.compile(r"readlink -m")


def accounts(*lines):
    return {ACCOUNTS: list(lines)}


def directories(*lines):
    return {DIRECTORIES: list(lines)}


HOST_STATE = [
    # An account someone logs in with, or one this deploy did not make.
    pytest.param({"omero_server_user": "admin"}, accounts("admin:x:1000:1000::/home/admin:/bin/bash"),
                 "omero_server_user", "'admin' is a login account (uid 1000)", id="the deploy's sudo user"),
    pytest.param({"omero_web_user": "alice"}, accounts("alice:x:1001:1001:Alice:/home/alice:/bin/bash"),
                 "omero_web_user", "'alice' is a login account (uid 1001)", id="a lab member as the web user"),
    pytest.param({"omero_web_user": "www"}, accounts("www:x:120:120::/var/www:/usr/sbin/nologin"),
                 "omero_web_user", "'www' is an existing account with the home /var/www",
                 id="another service's account"),
    pytest.param({"omero_server_user": "gitlab"}, accounts("gitlab:x:998:998::/var/opt/gitlab:/bin/sh"),
                 "omero_server_user", "not one this deploy made (whose home is /var/lib/gitlab)", id="gitlab"),
    pytest.param({"omero_group": "alice"}, accounts("alice:x:1001:1001:Alice:/home/alice:/bin/bash"),
                 "omero_group", "'alice' is the private group of the login account 'alice'", id="a user's group"),
    # A directory under parents someone else could swap, or a link into the system's trees.
    pytest.param({"omero_data_dir": "/srv/omero/data"}, directories("path /srv/omero/data /etc/omero-data",
                                                                    "dir 0 755 /etc", "dir 0 755 /"),
                 "omero_data_dir", "/srv/omero/data leads to /etc/omero-data: /etc/omero-data is inside /etc",
                 id="a link into /etc"),
    pytest.param({"omero_data_dir": "/home/alice/OMERO"}, directories(
        "path /home/alice/OMERO /home/alice/OMERO", "dir 1001 755 /home/alice", "dir 0 755 /home", "dir 0 755 /"),
        "omero_data_dir", "/home/alice, above /home/alice/OMERO, belongs to uid 1001", id="in a user's home"),
    pytest.param({"omero_server_db_dump_dir": "/scratch/dumps"}, directories(
        "path /scratch/dumps /scratch/dumps", "dir 0 1777 /scratch", "dir 0 755 /"),
        "omero_server_db_dump_dir", "/scratch, above /scratch/dumps, is writable by others (mode 1777)",
        id="a world-writable scratch space"),
    pytest.param({"omero_web_basedir": "/srv/web"}, directories(
        "path /srv/web /srv/web", "dir 0 775 /srv", "dir 0 755 /"),
        "omero_web_basedir", "/srv, above /srv/web, is writable by others (mode 775)", id="a group-writable parent"),
]


@pytest.mark.parametrize("data, responses, option, problem", HOST_STATE)
def test_host_state_refused_before_anything_changes(deploy, data, responses, option, problem):
    with pytest.raises(OmeroOptionError, match=f"option {option} \\(host @fake/aio\\): ") as caught:
        deploy({"aio": (ALL_ROLES, data)}, responses=responses, execute=False)
    assert problem in str(caught.value)
    # Only facts were read: the OS, PID 1, the accounts and the directories (with the CPUs and
    # addresses asked beside them for later).
    commands = unbatched(caught.value.runs["aio"].commands)
    assert all(c in (RELEASE, PID1, CPUS, ADDRESSES) or ACCOUNTS.search(c) or DIRECTORIES.search(c)
               for c in commands), commands


@pytest.mark.parametrize("data, responses", [
    ({}, accounts("omero-server:x:998:998::/var/lib/omero-server:/usr/sbin/nologin",
                  "omero-web:x:997:997::/var/lib/omero-web:/usr/sbin/nologin")),
    ({"omero_data_dir": "/OMERO"}, directories("path /OMERO /mnt/big/OMERO", "dir 0 755 /mnt/big",
                                               "dir 0 755 /mnt", "dir 0 755 /")),
    ({"omero_data_dir": "/data/OMERO"}, directories("path /data/OMERO /data/OMERO", "dir 0 1755 /data",
                                                    "dir 0 755 /")),
], ids=["accounts an earlier deploy made", "the repository on another disk", "a sticky root-only parent"])
def test_host_state_of_a_lab_passes(deploy, data, responses):
    deploy({"aio": (ALL_ROLES, data)}, responses=responses, execute=False)


def _made(path, mode, uid=None):
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    if uid is not None:
        os.chown(path, uid, -1)
    return path


@pytest.mark.parametrize("where, problem", [
    (lambda tmp: _made(tmp / "shared", 0o1777) / "secrets", "which everyone may write in"),
    (lambda tmp: _made(tmp / "open", 0o777) / "secrets", "open is writable by others"),
    (lambda tmp: _made(tmp / "secrets", 0o755), "is open to other accounts (mode 755)"),
    (lambda tmp: _made(tmp / "theirs", 0o700, uid=4321) / "secrets", "theirs belongs to uid 4321"),
], ids=["to be made in a sticky shared directory", "under a world-writable one", "readable by others",
        "under another account's"])
def test_secrets_dir_others_could_read_or_swap_refused(deploy, tmp_path, where, problem):
    if os.getuid() != 0 and "uid 4321" in problem:
        pytest.skip("giving a directory to another account needs root")
    secrets_dir = where(tmp_path)
    with pytest.raises(OmeroOptionError, match="option omero_secrets_dir ") as caught:
        deploy({"aio": (ALL_ROLES, {"omero_secrets_dir": str(secrets_dir)})}, execute=False)
    assert problem in str(caught.value)
    assert not secrets_dir.exists() or not any(secrets_dir.iterdir())  # no secret written there
