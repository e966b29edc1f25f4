"""What every OMERO host needs first: packages, trust, Java, Ice and OMERO's Python venvs."""

import shlex
from io import StringIO
from pathlib import PurePosixPath

from . import kit
from .operations import complete_directory, icepy_wheel, package_manager_idle, refreshed, secret_file
from .packages import Needs


def install(settings, needs: Needs) -> None:
    """The packages the host's roles need (``needs``), the lab's CA certificates and proxy."""
    platform = settings.platform
    package_manager_idle(name="Wait for a package manager an earlier run left running")
    kit.directory(name="Create the deploy's state directory", path=settings.state_dir,
                  user="root", group="root", mode="700")
    if settings.service_manager == "supervisord" and platform.is_debian:
        # Debian's package scripts start daemons; under supervisord only it may start them.
        kit.put(
                name="Keep package scripts from starting services (supervisord runs them)",
                src=str(kit.FILES / "policy-rc.d"),
                dest="/usr/sbin/policy-rc.d",
                user="root", group="root", mode="755",
            )
    if settings.http_proxy:
        kit.package_manager_proxy(settings)
        # curl (artifact downloads) reads it from here, never from its command line, which
        # every account on the host sees. The URL's grammar admits no quote or backslash.
        secret_file(name="Send curl through the proxy", content=f'proxy = "{settings.http_proxy}"\n',
                    dest=settings.curl_proxy_config, user="root", group="root", mode="600")
    else:
        kit.file(name="Remove curl's proxy configuration (no omero_http_proxy)",
                 path=settings.curl_proxy_config, present=False)
    certificates = []
    for path in settings.extra_ca_certificates:
        certificates.append(f"{platform.ca_dir}/omero-extra-{PurePosixPath(path).stem}.crt")
        kit.put(name=f"Trust the CA certificate {PurePosixPath(path).name}", src=path,
                dest=certificates[-1], user="root", group="root", mode="644")
    kit.packages(settings, "Install the packages", needs.packages, epel=needs.epel, dnf_modules=needs.dnf_modules,
                 crb=needs.crb)
    if certificates:
        refreshed(name="Rebuild the system CA bundle", commands=[platform.ca_update_command],
                  sources=certificates, stamp=settings.stamp("ca-bundle-rebuilt"))
    if settings.service_manager == "supervisord":
        kit.directory(name="Create the supervisord log directory", path="/var/log/supervisor",
                      user="root", group="root", mode="755")


def install_ice(settings) -> None:
    """Ice 3.6.5's C++ services (icegridnode & co.) from the site's tarball (their libraries
    are among the packages)."""
    tarball = kit.fetch(settings, settings.ice_artifact, settings.download_dir)
    complete_directory(
        name="Unpack Ice 3.6.5", target=settings.ice_home,
        fill=lambda scratch: ["tar", "-xzf", tarball, "-C", scratch, "--strip-components=1",
                              "--no-same-owner"],
    )
    linker_conf = "/etc/ld.so.conf.d/ice-3.6.5.conf"
    kit.put(
            name="Put Ice's libraries on the linker path",
            src=StringIO(f"{settings.ice_home}/lib64\n{settings.ice_home}/lib\n"),
            dest=linker_conf, user="root", group="root", mode="644",
        )
    refreshed(name="Refresh the linker cache", commands=["ldconfig"], sources=[linker_conf],
              stamp=settings.stamp("ldconfig"))


def site_packages(venv: str) -> str:
    """The venv's site-packages (a glob: the Python version is the host's); it changes
    whenever pip adds, upgrades or removes a package."""
    return f"{venv}/lib/python3*/site-packages"


def venv(settings, path: str) -> None:
    """A root-owned venv whose pip reaches the lab's index (CA, proxy)."""
    kit.venv(name=f"Create the venv {path}", path=path, python=settings.platform.python)
    # pip.conf may hold proxy credentials; pip runs as root only.
    kit.secret_template("pip/pip.conf.j2", f"{path}/pip.conf", user="root", group="root", mode="600",
                        ca_bundle=settings.platform.ca_bundle, http_proxy=settings.http_proxy,
                        pip_index_url=settings.pip_index_url)


def omero_venv(settings, path: str, packages: list[str]) -> None:
    """A root-owned venv holding IcePy 3.6.5 (from the wheel cache) and ``packages``."""
    venv(settings, path)
    wheel_dir = settings.wheel_dir
    if settings.icepy_wheel:
        kit.fetch(settings, settings.icepy_wheel, wheel_dir)  # into the wheel cache, made first
    else:
        kit.directory(name="Create the wheel cache", path=wheel_dir, user="root", group="root", mode="755")
        build_script = f"{wheel_dir}/build-icepy-wheel.sh"
        kit.put(name="Install the IcePy wheel build script", src=str(kit.FILES / "build-icepy-wheel.sh"),
                dest=build_script, user="root", group="root", mode="755")
        icepy_wheel(name="Build the IcePy 3.6.5 wheel (once; a few minutes)",
                    python=f"{path}/bin/python", wheel_dir=wheel_dir, build_script=build_script)
    # One pip run: IcePy only as a wheel (the cache's: PyPI has only its source).
    kit.pip_packages(
        name=f"Install IcePy 3.6.5 from the wheel cache, {', '.join(packages)}",
        packages=["zeroc-ice==3.6.5", *packages], virtualenv=path,
        extra_install_args=f"--find-links {shlex.quote(wheel_dir)} --only-binary zeroc-ice",
    )
