"""What the host tests look at from outside a host: OMERO.web's pages, the secrets."""

import re
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
