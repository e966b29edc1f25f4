import hashlib

import pytest

from .harness import run_deploy

ALL_ROLES = ("omero_database", "omero_server", "omero_web")


@pytest.fixture(scope="session", autouse=True)
def _no_secrets_from_environment():
    # Passwords must come from the inventory or be generated, the same on every machine.
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("OMERO_DB_PASSWORD", raising=False)
        patch.delenv("OMERO_ROOT_PASSWORD", raising=False)
        yield


@pytest.fixture(scope="session")
def server_data(tmp_path_factory):
    """Options an omero_server host needs: stand-in artifacts with their real sha256.

    Planning only checks their names and checksums; nothing unpacks or runs them.
    """
    directory = tmp_path_factory.mktemp("artifacts")
    data = {}
    for option, name in (("omero_server", "OMERO.server-5.6.16-ice36.zip"),
                         ("omero_ice", "Ice-3.6.5-plan-test.tar.gz")):
        path = directory / name
        path.write_bytes(f"plan-test stand-in for {name}\n".encode())
        data[f"{option}_artifact"] = str(path)
        data[f"{option}_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return data


@pytest.fixture(scope="session")
def deploy(tmp_path_factory, server_data):
    """``deploy({name: (groups, data)}, os_name=..., pid1=..., execute=...)``: run_deploy
    with the server artifacts and a temporary secrets directory as every host's defaults."""
    defaults = {"omero_secrets_dir": str(tmp_path_factory.mktemp("secrets")), **server_data}

    def run(hosts, **kwargs):
        return run_deploy({name: (groups, {**defaults, **data})
                           for name, (groups, data) in hosts.items()}, **kwargs)

    return run
