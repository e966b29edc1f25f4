"""What the host tests look at from outside a host: OMERO.web's pages, the secrets."""

import re
import subprocess
from pathlib import Path

import requests

LOGIN = "/webclient/login/"


def login_page(base_url: str) -> requests.Response:
    """The login page, served through nginx."""
    response = requests.get(f"{base_url}{LOGIN}", timeout=30)
    response.raise_for_status()
    assert "OMERO.web - Login" in response.text
    assert response.headers["Server"].startswith("nginx")
    return response


def stylesheet(page: requests.Response) -> str:
    """The path of the first stylesheet the login page links to."""
    found = re.findall(r'href="(/static/[^"]+\.css)', page.text)
    assert found, "the login page links no stylesheet"
    return found[0]


def secret(secrets_dir: Path, suffix: str) -> str:
    (path,) = secrets_dir.glob(f"*-{suffix}")
    return path.read_text().strip()


def curl(host, path: str, *args: str, name: str, scheme: str = "https", ca=None) -> subprocess.CompletedProcess:
    """curl as a client of the lab would use it: the site's name resolved to the host."""
    port = 443 if scheme == "https" else 80
    trust = ["--cacert", str(ca)] if ca else []
    return subprocess.run(["curl", "-sS", "--max-time", "20", "-D", "-", "-o", "/dev/null",
                           "--resolve", f"{name}:{port}:{host.address}", *trust, *args,
                           f"{scheme}://{name}{path}"], capture_output=True, text=True)


def headers(result: subprocess.CompletedProcess) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in result.stdout.splitlines()[1:]:
        key, _, value = line.partition(":")
        if value:
            found.setdefault(key.strip().lower(), []).append(value.strip())
    return found


def status(result: subprocess.CompletedProcess) -> int:
    return int(result.stdout.split()[1])
