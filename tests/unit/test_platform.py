"""What differs between the supported systems: the Platform detected from pyinfra's
LinuxDistribution fact, and what each one installs, where, and how."""

import dataclasses

import pytest

from deploys.errors import OmeroDeployError
from deploys.platform import Platform, detect

pytestmark = pytest.mark.unit


def _distribution(os_id, version_id, major, name="Some Linux", **meta):
    return {"name": name, "major": major,
            "release_meta": {"ID": os_id, "VERSION_ID": version_id, **meta}}


UBUNTU22 = _distribution("ubuntu", "22.04", 22, "Ubuntu")
UBUNTU24 = _distribution("ubuntu", "24.04", 24, "Ubuntu")
DEBIAN12 = _distribution("debian", "12", 12, "Debian")
DEBIAN13 = _distribution("debian", "13", 13, "Debian")
ROCKY9 = _distribution("rocky", "9.4", 9, "Rocky Linux", NAME="Rocky Linux")

DEBIAN_BASE = ["ca-certificates", "curl", "unzip", "tar", "bzip2", "python3-venv", "procps"]
DEBIAN_BUILD = ["python3-dev", "g++", "make", "libssl-dev", "libbz2-dev"]

# (distribution, label, python, postgres, java, nginx user, java 17 package, ice runtime)
DETECTED = [
    pytest.param(UBUNTU22, "Ubuntu 22.04", "python3", 14, 11, "www-data", "openjdk-17-jre-headless",
                 ["libdb5.3++", "libexpat1", "libbz2-1.0", "libssl3"], id="ubuntu22.04"),
    pytest.param(UBUNTU24, "Ubuntu 24.04", "python3", 16, 11, "www-data", "openjdk-17-jre-headless",
                 ["libdb5.3t64++", "libexpat1", "libbz2-1.0", "libssl3t64"], id="ubuntu24.04"),
    pytest.param(DEBIAN12, "Debian 12", "python3", 15, 17, "www-data", "openjdk-17-jre-headless",
                 ["libdb5.3++", "libexpat1", "libbz2-1.0", "libssl3"], id="debian12"),
    pytest.param(DEBIAN13, "Debian 13", "python3", 17, 21, "www-data", "openjdk-17-jre-headless",
                 ["libdb5.3++t64", "libexpat1", "libbz2-1.0", "libssl3t64"], id="debian13"),
    pytest.param(ROCKY9, "Rocky Linux 9", "python3.12", 16, 11, "nginx", "java-17-openjdk-headless",
                 ["expat", "libdb-cxx", "bzip2-libs", "openssl-libs"], id="rocky9"),
    pytest.param(_distribution("RHEL", "9.4", 9, NAME="Red Hat Enterprise Linux"),
                 "Red Hat Enterprise Linux 9",
                 "python3.12", 16, 11, "nginx", "java-17-openjdk-headless",
                 ["expat", "libdb-cxx", "bzip2-libs", "openssl-libs"], id="rhel9"),
    pytest.param(_distribution("almalinux", "9.4", 9), "almalinux 9", "python3.12", 16, 11, "nginx",
                 "java-17-openjdk-headless", ["expat", "libdb-cxx", "bzip2-libs", "openssl-libs"],
                 id="almalinux9 without NAME"),
]


@pytest.mark.parametrize(
    ("distribution", "label", "python", "postgres", "java", "nginx_user", "java17", "ice"), DETECTED)
def test_detect(distribution, label, python, postgres, java, nginx_user, java17, ice):
    platform = detect(distribution)
    assert (platform.label, platform.python, platform.postgres_version, platform.default_java,
            platform.nginx_user) == (label, python, postgres, java, nginx_user)
    assert platform.java_package(17) == java17
    assert platform.ice_runtime_packages == ice
    assert platform.supervisor_package == "supervisor"
    assert platform.nginx_site_path == "/etc/nginx/conf.d/omero-web.conf"


def test_debian_family_layout():
    platform = detect(DEBIAN12)
    assert platform.is_debian
    assert platform.base_packages == DEBIAN_BASE
    assert platform.build_packages == DEBIAN_BUILD
    assert platform.postgres_packages == ["postgresql-15", "postgresql-client"]
    assert platform.postgres_client_package == "postgresql-client"
    assert platform.postgres_data_dir == "/var/lib/postgresql/15/main"
    assert platform.postgres_conf_dir == "/etc/postgresql/15/main"
    assert platform.postgres_bin_dir == "/usr/lib/postgresql/15/bin"
    assert platform.postgres_unit == "postgresql@15-main.service"
    assert platform.ca_dir == "/usr/local/share/ca-certificates"
    assert platform.ca_update_command == "update-ca-certificates"
    assert platform.ca_bundle == "/etc/ssl/certs/ca-certificates.crt"
    assert platform.supervisor_conf == "/etc/supervisor/supervisord.conf"
    assert platform.supervisor_program_path("omero-web") == "/etc/supervisor/conf.d/omero-web.conf"
    assert platform.nginx_default_sites == ["/etc/nginx/sites-enabled/default"]


def test_rhel_family_layout():
    platform = detect(ROCKY9)
    assert not platform.is_debian
    assert platform.family == "rhel"
    assert platform.base_packages == ["ca-certificates", "curl", "unzip", "tar", "bzip2", "python3.12", "procps-ng"]
    assert platform.build_packages == ["python3.12-devel", "gcc-c++", "make", "openssl-devel", "bzip2-devel"]
    assert platform.postgres_packages == ["postgresql-server", "postgresql"]
    assert platform.postgres_client_package == "postgresql"
    assert platform.postgres_data_dir == "/var/lib/pgsql/data"
    assert platform.postgres_conf_dir == "/var/lib/pgsql/data"
    assert platform.postgres_bin_dir == "/usr/bin"
    assert platform.postgres_unit == "postgresql.service"
    assert platform.ca_dir == "/etc/pki/ca-trust/source/anchors"
    assert platform.ca_update_command == "update-ca-trust extract"
    assert platform.ca_bundle == "/etc/pki/tls/certs/ca-bundle.crt"
    assert platform.supervisor_conf == "/etc/supervisord.conf"
    assert platform.supervisor_program_path("omero-web") == "/etc/supervisord.d/omero-web.ini"
    assert platform.nginx_default_sites == []


@pytest.mark.parametrize(("distribution", "found"), [
    pytest.param(_distribution("ubuntu", "20.04", 20, "Ubuntu"), "Ubuntu 20.04", id="ubuntu20.04"),
    pytest.param(_distribution("ubuntu", "24.10", 24, "Ubuntu"), "Ubuntu 24.10", id="ubuntu24.10"),
    pytest.param(_distribution("debian", "11", 11, "Debian"), "Debian 11", id="debian11"),
    pytest.param(_distribution("centos", "7", 7, "CentOS"), "CentOS 7", id="centos7"),
    pytest.param(_distribution("rocky", "8.9", 8, "Rocky Linux"), "Rocky Linux 8.9", id="rocky8"),
    pytest.param({"name": "Alpine", "major": 3, "release_meta": {"ID": "alpine"}}, "Alpine 3",
                 id="no VERSION_ID"),
    pytest.param({"name": None, "major": None, "release_meta": None}, "unknown", id="nothing known"),
    pytest.param({}, "unknown", id="empty fact"),
])
def test_detect_refuses(distribution, found):
    with pytest.raises(OmeroDeployError) as error:
        detect(distribution)
    assert str(error.value) == (f"unsupported operating system {found!r}; supported: Ubuntu 22.04, "
                                "Ubuntu 24.04, Debian 12, Debian 13, Rocky Linux / RHEL / AlmaLinux 9")


@pytest.mark.parametrize(("distribution", "platform"), [
    (DEBIAN12, Platform("Debian 12", "debian", "python3", 15, 17, "www-data", (1, 22), 18, time64_libraries=False)),
    (UBUNTU22, Platform("Ubuntu 22.04", "debian", "python3", 14, 11, "www-data", (1, 18), 12, time64_libraries=False)),
    (ROCKY9, Platform("Rocky Linux 9", "rhel", "python3.12", 16, 11, "nginx", (1, 20), 22, time64_libraries=False)),
    (UBUNTU24, Platform("Ubuntu 24.04", "debian", "python3", 16, 11, "www-data", (1, 24), 18, time64_libraries=True)),
])
def test_detect_exactly(distribution, platform):
    assert detect(distribution) == platform


def test_platform_is_immutable():
    platform = detect(DEBIAN12)
    with pytest.raises(dataclasses.FrozenInstanceError):
        platform.python = "python3.11"
    assert hash(platform) == hash(detect(DEBIAN12))


def test_detect_reads_id_case_insensitively():
    assert detect(_distribution("Ubuntu", "22.04", 22)).label == "Ubuntu 22.04"


def test_detect_by_id_not_name():
    assert detect(_distribution("debian", "12", 12, "Ubuntu")).label == "Debian 12"
