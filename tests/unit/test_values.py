"""Values with parts: an endpoint's text, local URL and clashes; the TLS mode chosen once."""

import pytest

from deploys.values import Endpoint, ServerNames, TlsMode

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("endpoint, text, url", [
    (Endpoint(None, 80), "80", "http://127.0.0.1:80"),
    (Endpoint("0.0.0.0", 8080), "0.0.0.0:8080", "http://127.0.0.1:8080"),
    (Endpoint("::", 443), "[::]:443", "http://[::1]:443"),
    (Endpoint("::1", 4080), "[::1]:4080", "http://[::1]:4080"),
    (Endpoint("10.0.0.5", 443), "10.0.0.5:443", "http://10.0.0.5:443"),
    (Endpoint("localhost", 4080), "localhost:4080", "http://localhost:4080"),
])
def test_endpoint_text_and_local_url(endpoint, text, url):
    assert (str(endpoint), f"{endpoint}", endpoint.local_url) == (text, text, url)


@pytest.mark.parametrize("endpoint, host", [
    (Endpoint("127.0.0.1", 4080), "127.0.0.1"),
    (Endpoint("::1", 4080), "[::1]"),
    (Endpoint("localhost", 4080), "localhost"),
])
def test_endpoint_host_as_written_before_its_port(endpoint, host):
    assert endpoint.host == host


@pytest.mark.parametrize("one, other, clash", [
    (Endpoint("127.0.0.1", 80), Endpoint(None, 80), True),
    (Endpoint("127.0.0.1", 80), Endpoint("::", 80), True),
    (Endpoint("0.0.0.0", 80), Endpoint("10.0.0.5", 80), True),
    (Endpoint("10.0.0.5", 443), Endpoint("10.0.0.5", 443), True),
    (Endpoint("10.0.0.5", 443), Endpoint("10.0.0.6", 443), False),
    (Endpoint(None, 80), Endpoint(None, 443), False),
])
def test_endpoint_clashes(one, other, clash):
    assert one.clashes(other) is clash and other.clashes(one) is clash


@pytest.mark.parametrize("option, certificate, mode", [
    ("auto", None, TlsMode.OFF),
    ("auto", "/etc/ssl/site.pem", TlsMode.GIVEN),
    ("off", None, TlsMode.OFF),
    ("self-signed", None, TlsMode.SELF_SIGNED),
    ("acme", None, TlsMode.ACME),
])
def test_tls_mode_chosen_once(option, certificate, mode):
    chosen = TlsMode.chosen(option, certificate)
    assert chosen is mode
    assert chosen.https is (mode is not TlsMode.OFF)
    assert chosen.made_on_host is (mode in (TlsMode.SELF_SIGNED, TlsMode.ACME))


@pytest.mark.parametrize("given, text, names, any_host", [
    (("_",), "_", (), True),
    (("omero.lab", "_"), "omero.lab _", ("omero.lab",), True),
    (("a.lab", "*.lab"), "a.lab *.lab", ("a.lab", "*.lab"), False),
])
def test_server_names(given, text, names, any_host):
    server_names = ServerNames(given)
    assert (str(server_names), server_names.names, server_names.any_host) == (text, names, any_host)
