"""Build the OMERO image: deploy.py run into a fresh Debian 12 container, then committed.

    scripts/build-image [--output FILE] [--tag TAG] [options]

The container is made from a debootstrapped root (no registry needed), deployed as the
groups omero_database and omero_web (and omero_server when the server's zip and Ice's
tarball are given) with our own deploy (pyinfra's @podman connector, supervisord),
stripped of build leftovers and of everything a first start makes (the PostgreSQL
cluster, the binary repository, keys, logs), committed with ``omero-image`` (the
entrypoint) in front of supervisord, and saved as a docker-archive tarball that Docker,
Podman and Apptainer take. The build's own passwords are throwaway values; the saved
layers are searched for them, and for the paths a first start makes, before the build
counts as done.
"""

import argparse
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from pyinfra.api import Inventory

from deploys.container import STATE
from deploys.platform import detect
from deploys.services import program_users
from deploys.settings import Settings
from deploys.settings import load as load_settings

from .base import CACHE, digest, ensure_image, locked, run

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
# What goes into the image: a change to any of these makes another image.
SOURCES = ("deploy.py", "deploys", "facts", "files", "templates", "omero_image")
BASE_SUITE, BASE_PACKAGES = "bookworm", ["ca-certificates"]
PLATFORM = detect({"release_meta": {"ID": "debian", "VERSION_ID": "12"}, "major": 12})
LIB = "/usr/local/lib/omero-image"  # the entrypoint, its manifest and helpers, in the image
HTTP_PORT, WEB_PORT = 8080, 4080  # unprivileged: the image runs as any user
# Only to build: the IcePy wheel is compiled before the image is made.
BUILD_PACKAGES = ["g++", "make", "python3-dev", "libssl-dev", "libbz2-dev"]


def source_digest(*extra: str) -> str:
    """A digest of every source file that shapes the image (and ``extra`` inputs)."""
    hashed = hashlib.sha256(repr(extra).encode())
    for top in SOURCES:
        path = ROOT / top
        for file in sorted([path] if path.is_file() else path.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                hashed.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes())
    return hashed.hexdigest()[:12]


@dataclass
class Options:
    output: Path
    tag: str | None = None
    icepy_wheel: str | None = None
    icepy_wheel_sha256: str | None = None
    extra_ca_certificates: list[str] = field(default_factory=list)
    http_proxy: str | None = None
    pip_index_url: str | None = None
    # OMERO.server in the image: its zip and Ice's tarball (paths or URLs), each pinned.
    server_artifact: str | None = None
    server_sha256: str | None = None
    ice_artifact: str | None = None
    ice_sha256: str | None = None
    web_workers: int = 3
    keep: bool = False  # leave the build container for inspection

    @property
    def with_server(self) -> bool:
        return self.server_artifact is not None


def inputs_digest(options: Options) -> str:
    """What makes one image differ from another: the sources and the pinned inputs."""
    return source_digest(options.icepy_wheel_sha256 or "", options.server_sha256 or "",
                         options.ice_sha256 or "", *options.extra_ca_certificates)


@dataclass
class Built:
    tag: str
    tarball: Path
    seconds: float
    size: int  # bytes of the saved tarball
    labels: dict[str, str]
    secrets: list[bytes]  # the build's throwaway secrets, as searched for in the layers


def _inventory_data(options: Options, secrets_dir: Path) -> dict:
    """The build container's options, as its inventory gives them to the deploy."""
    data = {
        "omero_nginx_listen": str(HTTP_PORT),
        "omero_web_bind": f"127.0.0.1:{WEB_PORT}",
        "omero_web_workers": options.web_workers,
        "omero_image_build": True,
        "omero_secrets_dir": str(secrets_dir),
        "omero_extra_ca_certificates": options.extra_ca_certificates,
    }
    for key in ("icepy_wheel", "icepy_wheel_sha256", "http_proxy", "pip_index_url", "server_artifact",
                "server_sha256", "ice_artifact", "ice_sha256"):
        if getattr(options, key):
            data[f"omero_{key}"] = getattr(options, key)
    return data


def _inventory(container: str, options: Options, data: dict) -> str:
    host = repr((f"@podman/{container}", data))
    groups = ["omero_database", "omero_web"] + (["omero_server"] if options.with_server else [])
    return '"""The image build\'s container."""\n' + "".join(f"{group} = [{host}]\n" for group in groups)


def image_settings(data: dict) -> Settings:
    """The deploy's settings of the build container, loaded as deploy.py loads them, so the
    image's paths are named where the deploy names them. Loaded as an omero_web host alone:
    the paths do not depend on the roles, and that role needs no password nor artifact."""
    name = "@podman/omero-image-build"
    inventory = Inventory(([(name, data)], {}), omero_web=([name], {}))
    return load_settings(inventory.get_host(name), inventory, PLATFORM, pid1="supervisord")


def _manifest(settings: Settings, with_server: bool) -> dict:
    """What the entrypoint needs to know of the image: paths, users, build-time settings."""
    server = {
        "server_user": settings.server_user,
        "server_omerodir": settings.server_symlink,
        "server_omero": settings.server_omero,
        "server_config_dir": settings.server_config_dir,
        "server_home": settings.server_home,
        "server_data_dir": settings.data_dir,
        "server_etc": f"{LIB}/server-etc",  # the server's etc/, copied to the volume at each start
    } if with_server else {}
    platform = settings.platform
    return {
        "server": with_server,
        **server,
        "state": STATE,
        "postgres_version": platform.postgres_version,
        "postgres_bin_dir": platform.postgres_bin_dir,
        "postgres_data_dir": platform.postgres_data_dir,
        "postgres_conf": f"{platform.postgres_conf_dir}/postgresql.conf",
        "db_name": settings.db_name,
        "db_user": settings.db_user,
        "db_port": settings.db_port,
        "web_user": settings.web_user,
        "web_home": settings.web_home,
        "web_omerodir": settings.web_omerodir,
        "web_omero": settings.web_omero,
        "web_config_dir": settings.web_config_dir,
        "web_bind_host": settings.web_bind.host,
        "web_port": settings.web_bind.port,
        "web_workers": settings.web_workers,
        "nginx_user": platform.nginx_user,
        "nginx_site": platform.nginx_site_path,
        "http_port": settings.nginx_listen.port,
        "supervisor_programs": str(PurePosixPath(platform.supervisor_program_path("omero-web")).parent),
        "run_as": {program: user for program, user in program_users(settings).items()
                   if with_server or program != "omero-server"},
    }


def _labels(podman, container: str, digest_: str, settings: Settings) -> dict[str, str]:
    """The versions inside, read from the container."""
    def inside(command: str) -> str:
        return podman("exec", container, "sh", "-c", command).stdout.strip()

    python, postgres = f"{settings.web_venv}/bin/python", f"{settings.platform.postgres_bin_dir}/postgres"
    server_link = inside(f"readlink {settings.server_symlink} || true")
    server_version = "".join(re.findall(r"OMERO\.server-(.+)-ice36$", server_link))
    versions = json.loads(inside(
        f"{python} -c 'import json, importlib.metadata as m; print(json.dumps("
        "{p: m.version(p) for p in (\"omero-web\", \"omero-py\", \"zeroc-ice\", \"gunicorn\")}))'"))
    revision = run("git", "-C", str(ROOT), "rev-parse", "HEAD", check=False).stdout.strip()
    dirty = run("git", "-C", str(ROOT), "status", "--porcelain", "--", *SOURCES, check=False).stdout.strip()
    return {
        "org.opencontainers.image.title": "OMERO (PostgreSQL, OMERO.web, nginx)",
        "org.opencontainers.image.version": versions["omero-web"],
        "org.opencontainers.image.created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "org.opencontainers.image.revision": revision + ("-dirty" if dirty else ""),
        "org.opencontainers.image.base.name": f"debian:{inside('cat /etc/debian_version')}",
        "omero-pyinfra.sources": digest_,
        "omero-pyinfra.omero-web": versions["omero-web"],
        "omero-pyinfra.omero-py": versions["omero-py"],
        "omero-pyinfra.zeroc-ice": versions["zeroc-ice"],
        "omero-pyinfra.gunicorn": versions["gunicorn"],
        "omero-pyinfra.postgresql": postgres_version(inside(f"{postgres} --version")),
        "omero-pyinfra.nginx": inside("nginx -v 2>&1").rsplit("/", 1)[-1],
        "omero-pyinfra.python": inside(f"{python} -c 'import platform; print(platform.python_version())'"),
        "omero-pyinfra.omero-server": server_version or "none",
    }


def postgres_version(output: str) -> str:
    """The version in ``postgres --version``'s output: "postgres (PostgreSQL) 15.14 (Debian
    15.14-0+deb12u1)" gives 15.14."""
    found = re.search(r"\(PostgreSQL\) ([0-9][0-9.]*)\b", output)
    if not found:
        raise RuntimeError(f"no PostgreSQL version in {output!r}")
    return found.group(1)


def _secrets_made_at_build(podman, container: str, manifest: dict) -> list[bytes]:
    """The build's own secrets as they may sit on disk: the role's SCRAM keys, the Django key."""
    found = []
    verifier = podman("exec", container, "runuser", "-u", "postgres", "--", "psql", "-XAtq", "-c",
                      f"SELECT rolpassword FROM pg_authid WHERE rolname = '{manifest['db_user']}'").stdout.strip()
    # SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey
    found += [part.encode() for part in verifier.rsplit("$", 1)[-1].split(":") if part]
    key = podman("exec", container, "sh", "-c", f"cat {manifest['web_omerodir']}/var/django_secret_key 2>/dev/null",
                 check=False).stdout.strip()
    if key:
        found.append(key.encode())
    return found


def forbidden_paths(settings: Settings) -> tuple[str, ...]:
    """What a first start makes, never shipped: a cluster, a secret key, a private key."""
    return (f"{settings.platform.postgres_data_dir[1:]}/PG_VERSION",
            f"{settings.web_omerodir[1:]}/var/django_secret_key",
            "etc/ssl/private/ssl-cert-snakeoil.key", f"{settings.state_dir[1:]}/",
            # With the server: its keys, its password files, the build's repository.
            f"{settings.server_home[1:]}/", f"{settings.server_config_dir[1:]}/00-omero-server.omero",
            f"{settings.data_dir[1:]}/")


def layer_findings(tarball: Path, needles: list[bytes], forbidden: tuple[str, ...]) -> list[str]:
    """Where, in any layer of a docker-archive, any of ``needles`` or a forbidden path is."""
    findings = []
    with tarfile.open(tarball) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
        for layer_name in manifest[0]["Layers"]:
            with tarfile.open(fileobj=archive.extractfile(layer_name)) as layer:
                for member in layer:
                    path = member.name.removeprefix("./")
                    # A symlink is the image pointing at the volume, where a start makes the file.
                    if not member.issym() and any(path == bad.rstrip("/") or path.startswith(bad)
                                                  for bad in forbidden):
                        findings.append(f"{layer_name}: {path}")
                    if not member.isfile():
                        continue
                    content = layer.extractfile(member).read()
                    findings += [f"{layer_name}: {path} holds a build secret" for needle in needles
                                 if needle in content]
    return findings


def build(options: Options, env: dict | None = None, log=print) -> Built:
    env = env or dict(os.environ)
    started = time.monotonic()

    def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run("podman", *args, check=check, env=env)

    if options.with_server != (options.ice_artifact is not None) or (
            options.with_server and not (options.server_sha256 and options.ice_sha256)):
        raise ValueError("OMERO.server in the image needs --server-artifact and --ice-artifact, "
                         "with --server-sha256 and --ice-sha256")
    source = inputs_digest(options)
    tag = options.tag or f"localhost/omero-pyinfra:{source}"
    base = ensure_image(f"localhost/omero-image-base-{BASE_SUITE}:{digest(BASE_PACKAGES)}", BASE_SUITE,
                        BASE_PACKAGES, "/bin/sh", env)
    with locked("image-build"):  # one build at a time: they share apt's cache and its lock
        return _build(options, env, log, started, podman, source, tag, base)


def _build(options: Options, env: dict, log, started: float, podman, source: str, tag: str, base: str) -> Built:
    container = f"omero-image-build-{os.getpid()}"
    apt_cache = CACHE / "apt-archives" / BASE_SUITE / "image-build"
    apt_cache.mkdir(parents=True, exist_ok=True)
    (CACHE / "pip").mkdir(parents=True, exist_ok=True)
    podman("rm", "-f", container, check=False)
    # Caches are mounted, so they never land in the image (commit leaves mounts out). No
    # label: commit would keep it on the image.
    podman("run", "-d", "--name", container, "--init",
           "-v", f"{apt_cache}:/var/cache/apt/archives", "-v", f"{CACHE / 'pip'}:/root/.cache/pip",
           base, "sleep", "infinity")
    try:
        with tempfile.TemporaryDirectory(prefix="omero-image-") as work:
            work_dir = Path(work)
            data = _inventory_data(options, work_dir / "secrets")
            settings = image_settings(data)
            manifest = _manifest(settings, options.with_server)
            inventory = work_dir / "image.py"
            inventory.write_text(_inventory(container, options, data))
            log(f"deploying into {container} (a cold build takes about 5 minutes)")
            # The build's own, thrown away with its cluster and repository.
            password, root_password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            deployed = subprocess.run([PYINFRA, "-y", str(inventory), "deploy.py"], cwd=ROOT, capture_output=True,
                                      text=True, timeout=3600,
                                      env={**env, "OMERO_DB_PASSWORD": password, "OMERO_ROOT_PASSWORD": root_password})
            if deployed.returncode != 0:
                raise RuntimeError("the deploy into the build container failed:\n"
                                   + (deployed.stdout + deployed.stderr)[-4000:])
            needles = [password.encode(), root_password.encode(),
                       *(kept.read_bytes().strip() for kept in (work_dir / "secrets").glob("*") if kept.is_file()),
                       *_secrets_made_at_build(podman, container, manifest)]
            labels = _labels(podman, container, source, settings)
            (work_dir / "image.json").write_text(json.dumps(manifest, indent=1) + "\n")
            for name, source_path in (("entrypoint.py", HERE / "entrypoint.py"),
                                      ("omero_start_state.py", HERE / "omero_start_state.py"),
                                      ("omero_start_services.py", HERE / "omero_start_services.py"),
                                      ("omero_scram.py", ROOT / "deploys" / "scram.py"),
                                      ("omero_passwords.py", ROOT / "deploys" / "passwords.py"),
                                      ("omero_server_steps.py", ROOT / "deploys" / "server_steps.py"),
                                      ("omero_container.py", ROOT / "deploys" / "container.py"),
                                      ("watch.py", HERE / "watch.py"),
                                      ("finish.sh", HERE / "finish.sh"),
                                      ("image.json", work_dir / "image.json")):
                podman("cp", str(source_path), f"{container}:/tmp/{name}")
            log("removing build leftovers and first-start state")
            podman("exec", container, "sh", "/tmp/finish.sh", LIB, STATE, *BUILD_PACKAGES)
            changes = ["ENTRYPOINT [\"/usr/local/sbin/omero-image\"]", "CMD []", f"VOLUME [\"{STATE}\"]",
                       f"EXPOSE {HTTP_PORT}/tcp", "STOPSIGNAL SIGTERM", "WORKDIR /", "USER root"]
            changes += [f"LABEL {key}={json.dumps(value)}" for key, value in labels.items()]
            commit = ["commit", "--format", "docker", "--pause"]
            for change in changes:
                commit += ["--change", change]
            podman(*commit, container, tag)
            options.output.parent.mkdir(parents=True, exist_ok=True)
            partial = options.output.with_name(options.output.name + ".partial")
            partial.unlink(missing_ok=True)
            podman("save", "--format", "docker-archive", "-o", str(partial), tag)
            findings = layer_findings(partial, needles, forbidden_paths(settings))
            if findings:
                partial.unlink()
                raise RuntimeError("the image holds what it must not:\n" + "\n".join(findings[:20]))
            partial.rename(options.output)
    finally:
        if not options.keep:
            podman("rm", "-f", "-t", "5", container, check=False)
    return Built(tag, options.output, time.monotonic() - started, options.output.stat().st_size, labels, needles)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/build-image", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / "artifacts" / "omero-image.tar",
                        help="the docker-archive tarball to write (default: artifacts/omero-image.tar)")
    parser.add_argument("--tag", help="the image's name in podman (default: localhost/omero-pyinfra:<sources digest>)")
    parser.add_argument("--icepy-wheel", help="a zeroc-ice 3.6.5 wheel for Debian 12's Python 3.11 (path or URL); "
                                              "unset: built in the container (about 7 minutes)")
    parser.add_argument("--icepy-wheel-sha256")
    parser.add_argument("--extra-ca-certificate", action="append", default=[], dest="extra_ca_certificates",
                        help="a CA to trust while building (a TLS-inspecting proxy's); not kept in the image")
    parser.add_argument("--http-proxy")
    parser.add_argument("--pip-index-url")
    parser.add_argument("--server-artifact", help="OMERO.server-<version>-ice36.zip (path or URL): the server "
                                                  "in the image; unset: database and web only")
    parser.add_argument("--server-sha256")
    parser.add_argument("--ice-artifact", help="Ice 3.6.5's binaries for Debian 12 (tarball, path or URL)")
    parser.add_argument("--ice-sha256")
    parser.add_argument("--web-workers", type=int, default=3,
                        help="gunicorn workers by default (OMERO_WEB_WORKERS overrides it at start)")
    parser.add_argument("--keep", action="store_true", help="leave the build container for inspection")
    options = Options(**vars(parser.parse_args(argv)))
    built = build(options, log=lambda message: print(f"build-image: {message}", flush=True))
    print(f"build-image: {built.tag} saved to {built.tarball} ({built.size / 1e6:.0f} MB) "
          f"in {built.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
