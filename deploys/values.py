"""Values with parts, in the one form the deploy uses them: a listener's endpoint, the site's
TLS mode, a file the deploy fetches."""

import enum
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlparse


@dataclass(frozen=True)
class Endpoint:
    """Where something listens: ``address`` None is every address (nginx's port-only form);
    an IPv6 address is kept without brackets."""

    address: str | None
    port: int

    def __str__(self) -> str:
        """The form nginx and gunicorn read: ``port``, ``address:port`` or ``[v6]:port``."""
        return str(self.port) if self.address is None else f"{self.host}:{self.port}"

    @property
    def host(self) -> str:
        """The address as written before ``:port`` (an IPv6 one in brackets), for an endpoint
        whose port is given elsewhere (a container's, read at its start)."""
        return f"[{self.address}]" if ":" in self.address else self.address

    @property
    def local(self) -> "Endpoint":
        """The same listener as a check on its own host reaches it (every address: loopback)."""
        address = {None: "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.address, self.address)
        return Endpoint(address, self.port)

    @property
    def local_url(self) -> str:
        """The http URL a check on the host itself uses to reach the listener."""
        return f"http://{self.local}"

    def clashes(self, other: "Endpoint") -> bool:
        """Whether the two cannot both listen: one port, and one address or every address."""
        every = (None, "0.0.0.0", "::")
        return self.port == other.port and (
            self.address == other.address or self.address in every or other.address in every)


@dataclass(frozen=True)
class ServerNames:
    """nginx's ``server_name``: the names as given, ``_`` among them answering any Host."""

    given: tuple[str, ...]

    def __str__(self) -> str:
        return " ".join(self.given)

    @property
    def names(self) -> tuple[str, ...]:
        """The site's own names (without ``_``)."""
        return tuple(name for name in self.given if name != "_")

    @property
    def any_host(self) -> bool:
        """Whether a request for any other Host is answered too."""
        return "_" in self.given


class TlsMode(enum.Enum):
    """How the site gets its certificate, decided once from omero_nginx_tls and the files given."""

    OFF = "off"
    GIVEN = "given"  # omero_nginx_tls_certificate, under "auto"
    SELF_SIGNED = "self-signed"
    ACME = "acme"

    @classmethod
    def chosen(cls, option: str, certificate: str | None) -> "TlsMode":
        """The mode omero_nginx_tls (``option``) asks for: "auto" is a given certificate's, or off."""
        if option == "auto":
            return cls.OFF if certificate is None else cls.GIVEN
        return cls(option)

    @property
    def https(self) -> bool:
        return self is not TlsMode.OFF

    @property
    def made_on_host(self) -> bool:
        """The host makes the certificate (openssl), at least until an ACME client first runs."""
        return self in (TlsMode.SELF_SIGNED, TlsMode.ACME)


@dataclass(frozen=True)
class Artifact:
    """A file the deploy needs, from a URL or from a path on the machine running pyinfra."""

    source: str
    sha256: str

    @property
    def is_url(self) -> bool:
        return urlparse(self.source).scheme in ("http", "https")

    @property
    def filename(self) -> str:
        return PurePosixPath(urlparse(self.source).path if self.is_url else self.source).name
