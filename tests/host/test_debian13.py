"""Debian 13 (trixie): all-in-one (omero_database + omero_web) on a systemd host over SSH,
with PostgreSQL 17 and OMERO.web on Python 3.13 (IcePy 3.6.5 built for it), served over
HTTPS with a self-signed certificate made on the host, renewed when it nears expiry."""

import datetime
import socket
import ssl

import pytest
from cryptography import x509

from .checks import curl, headers, status
from .testhosts import DEBIAN13_SYSTEMD, SUBNET, SystemdHost, deploy, deployed, hosts_with_changes

UNITS = ("postgresql@17-main.service", "omero-web.service", "nginx.service")
NAME = "trixie.test"
CERTIFICATE = "/etc/nginx/omero-tls/site.crt"


@pytest.fixture(scope="module")
def trixie(tmp_path_factory, secrets_dir):
    host = SystemdHost("trixie", f"{SUBNET}.60", image=DEBIAN13_SYSTEMD, python_tag="cp313")
    with deployed(host, ["omero_database", "omero_web"], tmp_path_factory.mktemp("trixie"), secrets_dir,
                  omero_nginx_tls="self-signed", omero_nginx_server_name=NAME) as deployed_host:
        yield deployed_host


def served_certificate(host, trust) -> x509.Certificate:
    """The certificate nginx shows, verified against ``trust`` for the site's name."""
    context = ssl.create_default_context(cafile=str(trust))
    with socket.create_connection((host.address, 443), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=NAME) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def test_debian_13_with_postgresql_17_and_python_3_13(trixie):
    assert trixie.run(". /etc/os-release && echo $VERSION_ID").stdout.strip() == "13"
    assert trixie.testinfra.package("postgresql-17").is_installed
    version = trixie.run("/opt/omero/web/venv3/bin/python -c 'import sys, Ice; "
                         "print(sys.version_info[:2], Ice.stringVersion())'").stdout.strip()
    assert version == "(3, 13) 3.6.5"


def test_units_active_and_page_served_over_https(trixie, tmp_path):
    for unit in UNITS:
        assert trixie.testinfra.service(unit).is_running and trixie.testinfra.service(unit).is_enabled, unit
    # The host's own certificate is all a client needs to trust it (as a lab's users would).
    trust = tmp_path / "site.crt"
    trust.write_bytes(trixie.read_bytes(CERTIFICATE))
    page = curl(trixie, "/webclient/login/", name=NAME, ca=trust)
    assert status(page) == 200 and headers(page)["strict-transport-security"]
    assert status(curl(trixie, "/webclient/login/", name=NAME, scheme="http")) == 301


def test_self_signed_certificate_for_the_name_and_the_address(trixie, tmp_path):
    trust = tmp_path / "site.crt"
    trust.write_bytes(trixie.read_bytes(CERTIFICATE))
    served = served_certificate(trixie, trust)
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [NAME]
    assert [str(address) for address in names.get_values_for_type(x509.IPAddress)] == [trixie.address]
    lifetime = served.not_valid_after_utc - served.not_valid_before_utc
    assert datetime.timedelta(days=396) < lifetime <= datetime.timedelta(days=397)
    key = trixie.testinfra.file("/etc/nginx/omero-tls/site.key")
    assert (key.user, key.mode) == ("root", 0o600)


def test_second_run_changes_nothing(trixie):
    assert hosts_with_changes(trixie.inventory) == {}


def test_certificate_near_expiry_renewed_by_the_next_deploy(trixie, tmp_path):
    # The same key, a certificate with 5 days left: what a site sees a year on.
    trixie.run(f"cd /etc/nginx/omero-tls && openssl req -x509 -key site.key -days 5 -subj /CN={NAME} "
               f"-addext subjectAltName=DNS:{NAME},IP:{trixie.address} -out site.crt && systemctl reload nginx")
    trust = tmp_path / "expiring.crt"
    trust.write_bytes(trixie.read_bytes(CERTIFICATE))
    expiring = served_certificate(trixie, trust)
    assert expiring.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc) < datetime.timedelta(days=6)
    assert "Make the site's self-signed certificate when due" in hosts_with_changes(trixie.inventory)
    deploy(trixie.inventory, trixie)
    trust.write_bytes(trixie.read_bytes(CERTIFICATE))
    renewed = served_certificate(trixie, trust)
    assert renewed.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc) > datetime.timedelta(days=390)
    assert hosts_with_changes(trixie.inventory) == {}
