"""The image build's search of the saved layers: it must find what it looks for."""

import io
import json
import tarfile

import pytest

from omero_image.build import _manifest, forbidden_paths, image_settings, layer_findings, postgres_version

pytestmark = pytest.mark.unit

# As the image build names them, from the deploy's settings.
FORBIDDEN = forbidden_paths(image_settings({}))


def _tar(files: dict[str, bytes | str]) -> bytes:
    """A tar of ``files``: bytes are a file's content, a str a symlink's target."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _archive(path, *layers: dict[str, bytes | str]):
    """A docker-archive as `podman save` writes it: manifest.json naming one tar per layer."""
    names = [f"layer{number}.tar" for number in range(len(layers))]
    files = {name: _tar(layer) for name, layer in zip(names, layers, strict=True)}
    files["manifest.json"] = json.dumps([{"Layers": names}]).encode()
    path.write_bytes(_tar(files))
    return path


def test_a_secret_in_any_layer_and_a_forbidden_path_are_found(tmp_path):
    tarball = _archive(tmp_path / "image.tar",
                       {"etc/hostname": b"build\n"},
                       {"opt/app/log.txt": b"password=s3cret-build-value\n",
                        "var/lib/postgresql/15/main/PG_VERSION": b"15\n",
                        "var/lib/omero-pyinfra/nginx-reloaded.done": b""})
    assert layer_findings(tarball, [b"s3cret-build-value"], FORBIDDEN) == [
        "layer1.tar: opt/app/log.txt holds a build secret",
        "layer1.tar: var/lib/postgresql/15/main/PG_VERSION",
        "layer1.tar: var/lib/omero-pyinfra/nginx-reloaded.done",
    ]


def test_a_clean_image_has_no_findings(tmp_path):
    """The image's symlinks into the state volume are not the files they point at."""
    tarball = _archive(tmp_path / "image.tar", {"etc/hostname": b"build\n"},
                       {"var/lib/postgresql/15/main": "/var/lib/omero/postgresql",
                        "opt/omero/web/OMERO.web/var/django_secret_key": "/var/lib/omero/web/django_secret_key"})
    assert layer_findings(tarball, [b"s3cret-build-value"], FORBIDDEN) == []


@pytest.mark.parametrize(("output", "version"), [
    ("postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n", "15.14"),
    ("postgres (PostgreSQL) 17.6 (Debian 17.6-0+deb13u1)", "17.6"),
    ("postgres (PostgreSQL) 16.0", "16.0"),
])
def test_the_postgresql_label_is_the_version_alone(output, version):
    assert postgres_version(output) == version


def test_no_postgresql_version_found_stops_the_build():
    with pytest.raises(RuntimeError, match="no PostgreSQL version"):
        postgres_version("command not found")


def test_the_manifest_names_the_paths_the_deploy_names():
    """The entrypoint's manifest follows the deploy's options, as the deploy derives them."""
    settings = image_settings({"omero_web_basedir": "/srv/web", "omero_server_basedir": "/srv/server",
                               "omero_server_user": "omeroserver", "omero_web_bind": "127.0.0.1:4999"})
    manifest = _manifest(settings, with_server=True)
    assert (manifest["web_omero"], manifest["web_omerodir"], manifest["web_config_dir"], manifest["web_port"]) == (
        "/srv/web/venv3/bin/omero", "/srv/web/OMERO.web", "/srv/web/config", 4999)
    assert manifest["run_as"]["omero-server"] == "omeroserver"
    assert (manifest["server_omero"], manifest["server_omerodir"], manifest["server_home"]) == (
        "/srv/server/venv3/bin/omero", "/srv/server/OMERO.server", "/var/lib/omeroserver")
    assert "srv/server/config/00-omero-server.omero" in forbidden_paths(settings)
