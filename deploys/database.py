"""PostgreSQL for OMERO: the distribution's server, scram-sha-256 only, listening only where
the OMERO.server hosts need it, with the OMERO role and a UTF8 database it owns."""

from pyinfra.operations import files

from . import container, kit, services
from .database_operations import postgres_configured, postgres_database, postgres_role
from .operations import changed, run_once, wait_until

AS_POSTGRES = {"_su_user": "postgres"}


def install(settings) -> None:
    """The cluster on RHEL (the packages are prerequisites'; Debian's makes the cluster)."""
    platform = settings.platform
    if not platform.is_debian:
        run_once(name="Initialise the PostgreSQL cluster (UTF8)",
                 command="PGSETUP_INITDB_OPTIONS='--encoding=UTF8 --locale=C.UTF-8' "
                         "postgresql-setup --initdb",
                 creates=f"{platform.postgres_data_dir}/PG_VERSION")


def configure(settings) -> list[str]:
    """Write PostgreSQL's configuration; returns the files a restart applies."""
    platform = settings.platform
    conf_d = f"{platform.postgres_conf_dir}/conf.d"
    kit.directory(name="Create PostgreSQL's conf.d", path=conf_d, user="postgres",
                  group="postgres", mode="755")
    written = []
    if not platform.is_debian:
        postgresql_conf = f"{platform.postgres_conf_dir}/postgresql.conf"
        files.line(name="Read PostgreSQL's conf.d", path=postgresql_conf,
                   line="^include_dir = 'conf.d'", replace="include_dir = 'conf.d'")
        written.append(postgresql_conf)
    written.append(f"{conf_d}/omero.conf")
    kit.template("postgresql/omero.conf.j2", written[-1], user="postgres", group="postgres", mode="644",
                 db_listen_addresses=settings.db_listen_addresses, db_port=settings.db_port)
    written.append(f"{platform.postgres_conf_dir}/pg_hba.conf")
    kit.template(
        "postgresql/pg_hba.conf.j2", written[-1], user="postgres", group="postgres",
        mode="640", db_name=settings.db_name, db_user=settings.db_user,
        clients=[cidr(address) for address in settings.db_client_addresses if address != "localhost"],
        replication=(settings.replication_user, cidr(settings.standby_address)) if settings.standby_address else None,
    )
    return written


def start(settings, config_files: list[str]) -> None:
    run(settings, config_files)
    postgres_role(name=f"Create the database role {settings.db_user}", role=settings.db_user,
                  password=settings.db_password, port=settings.db_port, **AS_POSTGRES)
    postgres_database(name=f"Create the database {settings.db_name}", database=settings.db_name,
                      owner=settings.db_user, port=settings.db_port, **AS_POSTGRES)


def run(settings, config_files: list[str]) -> None:
    """PostgreSQL running (restarted when ``config_files`` changed since) and accepting connections."""
    platform = settings.platform
    kit.directory(name="Create PostgreSQL's socket directory", path="/var/run/postgresql",
                  user="postgres", group="postgres", mode="2775")
    command = (f"{platform.postgres_bin_dir}/postgres -D {platform.postgres_data_dir} "
               f"-c config_file={platform.postgres_conf_dir}/postgresql.conf")
    if settings.image_build:
        # A container's port and socket directory. Debian's ssl = on names the snakeoil key,
        # which the image does not ship; PostgreSQL listens on localhost only there.
        sockets = container.expansion(container.PG_SOCKETS)
        command += (f" -c port={container.expansion(container.DB_PORT)} -c unix_socket_directories={sockets} "
                    f"-c external_pid_file={sockets}/postmaster.pid -c ssl=off")
    services.program(settings, "postgresql", command=command, user="postgres", stopsignal="INT")
    if settings.service_manager == "systemd":
        services.drop_in(platform.postgres_unit, "omero-restart", "systemd/postgresql-restart.conf.j2")
    if settings.image_build:
        # The image's PostgreSQL listens on the container's port (above): a change restarts it.
        started, configured = services.start(settings, "postgresql", restart_sources=config_files), None
    else:
        started = services.start(settings, "postgresql")
        configured = postgres_configured(
            name="Apply PostgreSQL's configuration (reloaded; restarted to listen elsewhere)", sources=config_files,
            stamp=settings.stamp("postgresql-configured"), listen_addresses=settings.db_listen_addresses,
            port=settings.db_port, reload=services.action_command(settings, "reload", "postgresql"),
            restart=services.action_command(settings, "restart", "postgresql"))
    wait_until(name="Wait until PostgreSQL accepts connections",
               check=f"{platform.postgres_bin_dir}/pg_isready -q -h /var/run/postgresql "
                     f"-p {settings.db_port}",
               what="PostgreSQL", when=changed(started, configured))


def deploy(settings) -> None:
    install(settings)
    start(settings, configure(settings))


def cidr(address: str) -> str:
    """pg_hba wants a network for an IP address; a host name stays as it is."""
    if address.replace(".", "").isdigit():
        return f"{address}/32"
    if ":" in address:
        return f"{address}/128"
    return address
