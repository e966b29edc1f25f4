"""The analysis environment (omero_analysis hosts, also in omero_web): JupyterHub, whose
users log in with their Unix accounts (PAM, members of omero_analysis_users_group) and
get JupyterLab with kernels holding omero-py (our IcePy wheel), ezomero, numpy,
scikit-image, tifffile and this repository's data tools; served by the OMERO.web host's
nginx at / of a name of its own (omero_analysis_server_name), never on OMERO.web's origin:
what a user's server serves must not run with a visitor's OMERO.web session
(docs/analysis.md). Under systemd each user's server is a unit of its own, with limits.

Two venvs, as The Littlest JupyterHub keeps them: the hub's own, and the users' (their
single-user servers and kernels), so that what users install or break never touches the hub.
"""

import shlex
from io import BytesIO

from . import kit, movein_wheel, services, system_operations
from .operations import changed, complete_directory, owned_by, refreshed, run_once, wait_until
from .prerequisites import omero_venv, site_packages, venv

OMERO_PORT = 4064


def install(settings) -> None:
    # Empty: the lab's administrators add the users who may log in.
    system_operations.group(name=f"Create the group {settings.analysis_users_group} (who may use JupyterHub)",
                            group=settings.analysis_users_group)
    kit.directory(name="Create the analysis base directory", path=settings.analysis_basedir,
                  user="root", group="root", mode="755")
    kit.directory(name="Create JupyterHub's state directory", path=settings.hub_state_dir,
                  user="root", group="root", mode="700")
    _proxy(settings)
    venv(settings, settings.hub_venv)
    hub_packages = [f"jupyterhub=={settings.jupyterhub_version}"]
    if settings.service_manager == "systemd":
        hub_packages.append(f"jupyterhub-systemdspawner=={settings.systemdspawner_version}")
    kit.pip_packages(name=f"Install JupyterHub {settings.jupyterhub_version} (the hub)",
                     packages=hub_packages, virtualenv=settings.hub_venv)
    omero_venv(settings, settings.user_venv, [
        f"jupyterhub=={settings.jupyterhub_version}", f"jupyterlab=={settings.jupyterlab_version}",
        "ipykernel", f"omero-py=={settings.py_version}", f"ezomero=={settings.ezomero_version}",
        "scikit-image", *movein_wheel.REQUIREMENTS,
    ])
    _data_tools(settings)


def _proxy(settings) -> None:
    """configurable-http-proxy from npm, in a directory of its release."""
    # npm's configuration may hold proxy credentials: root's only.
    kit.secret_template("analysis/npmrc.j2", settings.npmrc, user="root", group="root", mode="600",
                        ca_bundle=settings.platform.ca_bundle, http_proxy=settings.http_proxy,
                        npm_registry_url=settings.npm_registry_url)
    complete_directory(
        name=f"Install configurable-http-proxy {settings.analysis_proxy_version} (npm)",
        target=settings.proxy_dir,
        fill=lambda scratch: ["npm", "install", "--prefix", scratch, "--userconfig", settings.npmrc,
                              f"configurable-http-proxy@{settings.analysis_proxy_version}"],
        owner="root:root",
    )
    # npm keeps the owners its tarballs record (a packager's uid, maybe a lab member's): root
    # runs this code, so no one else may own any of it, on hosts installed before too.
    owned_by(name="Keep configurable-http-proxy root's", tree=settings.proxy_dir, user="root", group="root")


def _data_tools(settings) -> None:
    """omero_movein, from a wheel built from this repository as it is now."""
    wheel = f"{settings.wheel_dir}/{movein_wheel.FILENAME}"
    kit.put(name="Upload the data tools' wheel (omero_movein, built from this repository)",
            src=BytesIO(movein_wheel.build()), dest=wheel, user="root", group="root", mode="644")
    # Same version, other content: reinstalled whenever the wheel on the host is newer.
    refreshed(name="Install the data tools (omero-png2tiff, omero-masks2rois) in the users' venv",
              commands=[f"{shlex.quote(settings.user_venv + '/bin/pip')} install --quiet --no-deps "
                        f"--no-index --force-reinstall {shlex.quote(wheel)}"],
              sources=[wheel], stamp=settings.stamp("omero-movein-installed"))


def _secret(settings, path: str, what: str) -> None:
    """A random hex secret made on the host (never shown, never leaves it), root's 0600."""
    # Not complete_directory: one file, which must be 0600 from its creation (umask, redirect).
    python = shlex.quote(f"{settings.hub_venv}/bin/python")
    partial = shlex.quote(f"{path}.partial")
    run_once(name=f"Make {what} (on the host)",
             command=(f"(umask 077 && {python} -c 'import secrets; print(secrets.token_hex(32))' > {partial}) "
                      f"&& mv {partial} {shlex.quote(path)}"),
             creates=path)
    kit.file(name=f"Keep {what} root's only", path=path, user="root", group="root", mode="600")


def hub_config_values(settings) -> dict[str, str]:
    """The values of jupyterhub_config.py, each as a Python literal (repr)."""
    port = settings.analysis_port
    environment = {
        # What ezomero.connect() reads when not given them: only the user's name and password are asked.
        "OMERO_HOST": settings.analysis_omero_host, "OMERO_PORT": str(OMERO_PORT), "OMERO_SECURE": "True",
        # The users' venv first: its commands (omero, omero-png2tiff) in terminals and `!` lines.
        "PATH": f"{settings.user_venv}/bin:/usr/local/bin:/usr/bin:/bin",
    }
    values = {
        "bind_url": f"http://127.0.0.1:{port}/",
        "public_url": settings.hub_public_url,
        "proxy_api_url": f"http://127.0.0.1:{port + 1}",
        "hub_bind_url": f"http://127.0.0.1:{port + 2}",
        "proxy_command": [settings.proxy_command],
        "proxy_pid_file": f"{settings.hub_state_dir}/jupyterhub-proxy.pid",
        "proxy_auth_token": settings.proxy_auth_token,
        "cookie_secret_file": settings.hub_cookie_secret,
        "db_url": f"sqlite:///{settings.hub_state_dir}/jupyterhub.sqlite",
        "allowed_groups": {settings.analysis_users_group},
        "singleuser": [f"{settings.user_venv}/bin/jupyterhub-singleuser"],
        "environment": environment,
        # supervisord has no per-user units: servers are the hub's children, unlimited.
        "spawner_class": "localprocess",
    }
    if settings.service_manager == "systemd":
        values.update(
            spawner_class="systemdspawner.SystemdSpawner",
            mem_limit=settings.analysis_memory_limit,
            cpu_limit=float(settings.analysis_cpu_limit),
            unit_properties={
                "TasksMax": str(settings.analysis_tasks_limit),
                "InaccessiblePaths": " ".join(f"-{path}" for path in settings.hub_inaccessible_paths),
            },
        )
    return {key: repr(value) for key, value in values.items()}


def configure(settings) -> list[str]:
    """Write the hub's configuration and secrets; returns what a restart applies."""
    _secret(settings, settings.hub_cookie_secret, "JupyterHub's cookie secret")
    _secret(settings, settings.proxy_auth_token, "the proxy's auth token")
    kit.template("analysis/jupyterhub_config.py.j2", settings.hub_config, py=hub_config_values(settings))
    return [settings.hub_config, site_packages(settings.hub_venv), settings.hub_cookie_secret,
            settings.proxy_auth_token]


def site_values(settings) -> dict:
    """What the hub's nginx site template reads."""
    return {
        "analysis_server_name": settings.analysis_server_name, "nginx_listen": settings.nginx_listen,
        "https": settings.https, "nginx_https_listen": settings.nginx_https_listen,
        "nginx_http2_directive": settings.platform.nginx_http2_directive,
        "acme_webroot": settings.acme_webroot, "tls_certificate_path": settings.tls_certificate_path,
        "tls_key_path": settings.tls_key_path, "nginx_hsts": settings.nginx_hsts,
        "nginx_client_max_body_size": settings.nginx_client_max_body_size, "proxy_url": settings.proxy_url,
    }


def site(settings) -> str:
    """The hub's own nginx site (written with nginx's configuration); returns its path."""
    kit.template("nginx/omero-jupyterhub.conf.j2", settings.hub_site_path, **site_values(settings))
    return settings.hub_site_path


def start(settings, restart_sources: list[str]) -> None:
    # The hub starts the proxy itself (a child: stopped and restarted with it).
    services.program(
        settings, "omero-jupyterhub",
        command=f"{settings.hub_venv}/bin/jupyterhub -f {settings.hub_config}",
        user="root", directory=settings.hub_state_dir,
        unit_template="systemd/omero-jupyterhub.service.j2",
    )
    started = services.start(settings, "omero-jupyterhub", restart_sources=restart_sources)
    health = f"http://127.0.0.1:{settings.analysis_port}/hub/health"
    wait_until(name="Wait until JupyterHub answers through its proxy",
               check=f"curl -gfs -o /dev/null {shlex.quote(health)}", what="JupyterHub",
               when=changed(started))


def deploy(settings) -> None:
    install(settings)
    start(settings, configure(settings))
