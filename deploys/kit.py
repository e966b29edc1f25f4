"""What every component builds on: its templates and files, packages from the host's
package manager, and artifacts put on the host."""

import os
from collections.abc import Sequence
from io import StringIO
from pathlib import Path

from jinja2 import FileSystemLoader
from pyinfra import host, inventory, state
from pyinfra.api.util import get_template
from pyinfra.operations import dnf, files

from . import file_operations, venv_operations
from .batched import want_path, want_venv
from .operations import dnf_repo_enabled, secret_file
from .system_operations import apt_packages, dnf_packages
from .values import Artifact

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
FILES = TEMPLATES.parent / "files"


# files.directory, files.file, files.link (removed) and files.put, each deciding from the host's one batched fact
# (deploys/batched.py); pyinfra's own under --diff, which they cannot show.
def directory(*, path: str, **kwargs):
    """files.directory (path, present, user, group, mode)."""
    if state.config.DIFF:
        return files.directory(path=path, **kwargs)
    want_path(path)
    return file_operations.directory(path=path, **kwargs)


def directories(*, paths: dict[str, str | None], **kwargs):
    """files.directory of each of ``paths`` (``{path: mode}``; present, user, group), in one
    operation (one command to make them)."""
    for path in paths:
        want_path(path)
    return file_operations.directories(paths=paths, **kwargs)


def file(*, path: str, **kwargs):
    """files.file (path, present, user, group, mode)."""
    if state.config.DIFF:
        return files.file(path=path, **kwargs)
    want_path(path)
    want_path(str(Path(path).parent))
    return file_operations.file(path=path, **kwargs)


def link_absent(*, path: str, **kwargs):
    """files.link (path, present=False)."""
    if state.config.DIFF:
        return files.link(path=path, present=False, **kwargs)
    want_path(path)
    return file_operations.link_absent(path=path, **kwargs)


def put(*, src, dest: str, **kwargs):
    """files.put (src: a local path or a file-like object; dest: the file's own path, user,
    group, mode)."""
    if state.config.DIFF:
        return files.put(src=src, dest=dest, **kwargs)
    if isinstance(src, str) and state.cwd:
        src = os.path.join(state.cwd, src)  # as files.put: relative to the deploy's directory
    want_path(dest, checksum=True)
    want_path(str(Path(dest).parent))
    return file_operations.put(src=src, dest=dest, **kwargs)


def venv(*, path: str, **kwargs):
    """pip.venv (path, python)."""
    want_path(f"{path}/bin/activate")
    return venv_operations.venv(path=path, **kwargs)


def pip_packages(*, virtualenv: str, **kwargs):
    """pip.packages (packages, virtualenv, present, extra_install_args)."""
    want_venv(virtualenv)
    return venv_operations.packages(virtualenv=virtualenv, **kwargs)


def template(src: str, dest: str, *, user="root", group="root", mode="644", **context):
    """A template of our template directory written to ``dest``, ownership spelled out;
    ``context`` holds exactly the values the template reads (as files.template: with
    ``host``, ``state`` and ``inventory``). Templates import shared macros by their path
    under templates/."""
    if state.config.DIFF:
        return files.template(name=f"Write {dest}", src=str(TEMPLATES / src), dest=dest, user=user, group=group,
                              mode=mode, jinja_env_kwargs=_jinja_env(), **context)
    content = get_template(str(TEMPLATES / src), jinja_env_kwargs=_jinja_env()).render(
        {"host": host, "state": state, "inventory": inventory, **context})
    return put(name=f"Write {dest}", src=StringIO(content), dest=dest, user=user, group=group, mode=mode)


def _jinja_env() -> dict:
    # A new dict each time: get_template pops the loader from it.
    return {"loader": FileSystemLoader(str(TEMPLATES))}


def secret_template(src: str, dest: str, *, user: str, group: str, mode: str, **context):
    """A template whose result holds a secret: written with ``secret_file`` (never shown)."""
    # Rendered as files.template renders (pyinfra's own loader), only not uploaded by it.
    content = get_template(str(TEMPLATES / src)).render(**context)
    return secret_file(name=f"Write {dest}", dest=dest, content=content, user=user, group=group,
                       mode=mode)


def packages(settings, name: str, names: list[str], *, epel: Sequence[str] = (),
             dnf_modules: Sequence[tuple[str, str, str]] = (), crb: Sequence[str] = ()):
    """Install ``names`` with the host's package manager, without recommended packages.

    apt refreshes its lists first when they are older than an hour and a package is to be
    installed. dnf, before installing: ``epel`` enables EPEL (for what), ``dnf_modules``
    module streams (what, module, stream), ``crb`` CodeReady Builder (for what).
    """
    if settings.platform.is_debian:
        return apt_packages(name=name, packages=names, update=True, cache_time=3600)
    for what, module, stream in dnf_modules:
        dnf.module(name=f"Enable {what}", module=module, stream=stream)
    if crb:
        dnf_repo_enabled(name=f"Enable CodeReady Builder ({', '.join(crb)})", repo="crb")
    if epel:
        dnf_packages(name=f"Enable EPEL ({', '.join(epel)})", packages=["epel-release"])
    return dnf_packages(name=name, packages=names)


def package_manager_proxy(settings) -> None:
    """Send the package manager through ``omero_http_proxy``."""
    if settings.platform.is_debian:
        # Proxy URLs may carry credentials: readable by root only.
        secret_file(
            name="Send apt through the proxy",
            content=(f'Acquire::http::Proxy "{settings.http_proxy}";\n'
                     f'Acquire::https::Proxy "{settings.http_proxy}";\n'),
            dest="/etc/apt/apt.conf.d/80omero-proxy",
            user="root", group="root", mode="600",
        )
    else:
        # Refused with credentials in it (settings): dnf.conf is world-readable.
        files.line(name="Send dnf through the proxy", path="/etc/dnf/dnf.conf",
                   line="^proxy=.*", replace=f"proxy={settings.http_proxy}")


def fetch(settings, artifact: Artifact, into: str) -> str:
    """Put an artifact on the host (download or upload), sha256-checked; returns its path."""
    directory(name=f"Create {into}", path=into, user="root", group="root", mode="755")
    dest = f"{into}/{artifact.filename}"
    if artifact.is_url:
        files.download(
            name=f"Download {artifact.filename}", src=artifact.source, dest=dest,
            sha256sum=artifact.sha256, user="root", group="root", mode="644",
            extra_curl_args={"--config": settings.curl_proxy_config} if settings.http_proxy else None,
        )
    else:
        # put compares checksums itself; the pinned sha256 was checked before planning.
        put(name=f"Upload {artifact.filename}", src=artifact.source, dest=dest,
            user="root", group="root", mode="644")
    return dest
