"""What a container of the OMERO image sets at each start (omero_image/entrypoint.py) and the
deploy's supervisord programs and nginx site read when the deploy builds the image
(``omero_image_build``): the ports, addresses, users and paths that differ from one container
to the next reach supervisord as its environment (``%(ENV_X)s`` in a program) and nginx as
small files its site includes.

Standard library only: the image's entrypoint ships this file as ``omero_container``.
"""

STATE = "/var/lib/omero"  # the state volume: everything a container changes
RUN = f"{STATE}/run"  # made anew at each start

# supervisord's environment, read by the programs.
DB_PORT, WEB_PORT, WEB_WORKERS = "OMERO_DB_PORT", "OMERO_WEB_PORT", "OMERO_WEB_WORKERS"
PG_SOCKETS = "OMERO_PG_SOCKETS"  # PostgreSQL's socket and pid directory
NGINX_CONF = "OMERO_NGINX_CONF"

# What nginx's site includes, in RUN.
LISTEN, LISTEN_DEFAULT, UPSTREAM = "nginx-listen.conf", "nginx-listen-default.conf", "nginx-upstream.conf"


def run_as(program: str) -> str:
    """The variable naming the user ``program`` runs as: its own under root, else whoever
    runs the container (supervisord cannot switch users then)."""
    return "OMERO_RUN_AS_" + program.upper().replace("-", "_")


def home(program: str) -> str:
    """The variable naming ``program``'s HOME, which supervisord does not set (it passes on
    its own, root's)."""
    return "OMERO_HOME_" + program.upper().replace("-", "_")


def expansion(variable: str) -> str:
    """``variable`` as a supervisord program reads it from supervisord's environment."""
    return f"%(ENV_{variable})s"


def nginx_includes(listen: str, upstream: str) -> dict[str, str]:
    """The files nginx's site includes: where it listens (``ADDRESS:PORT`` or ``PORT``) and
    where OMERO.web is (``HOST:PORT``)."""
    return {LISTEN: f"listen {listen};\n", LISTEN_DEFAULT: f"listen {listen} default_server;\n",
            UPSTREAM: f"server {upstream} fail_timeout=0;\n"}
