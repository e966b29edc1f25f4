#!/bin/sh
# Run inside the build container once the deploy is done (by build.py, as root): install the
# entrypoint, point what a start writes at the state volume, and remove what the build left
# and what a first start makes (the build's cluster and keys), so neither lands in a layer.
#   finish.sh LIB STATE BUILD-PACKAGE...
set -eu
lib=$1 state=$2
shift 2

# The deploy's services stop before their files go.
if pgrep -x supervisord >/dev/null; then
    supervisorctl -c /etc/supervisor/supervisord.conf shutdown >/dev/null
fi
i=0
while pgrep -x supervisord >/dev/null; do
    i=$((i + 1)); [ "$i" -lt 120 ] || { echo "supervisord did not stop" >&2; exit 1; }
    sleep 0.5
done

install -d -m 755 "$lib" "$state"
find "$state" -mindepth 1 -delete  # what the build's services read (omero_image_build)
install -m 755 /tmp/entrypoint.py /tmp/watch.py "$lib/"
install -m 644 /tmp/omero_scram.py /tmp/omero_passwords.py /tmp/omero_server_steps.py /tmp/omero_container.py \
    /tmp/omero_start_state.py /tmp/omero_start_services.py /tmp/image.json "$lib/"
ln -sfn "$lib/entrypoint.py" /usr/local/sbin/omero-image
setting() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$lib/image.json" "$1"; }

# Where a start writes, the image points at the volume (the image may be read-only).
pgdata=$(setting postgres_data_dir)
rm -rf "$pgdata"
ln -s "$state/postgresql" "$pgdata"
omerodir=$(setting web_omerodir)
rm -rf "$omerodir/var/log" "$omerodir/var/django_secret_key" "$omerodir/etc/grid"
install -d -m 755 "$omerodir/etc"
ln -s "$state/web/log" "$omerodir/var/log"
ln -s "$state/web/django_secret_key" "$omerodir/var/django_secret_key"
ln -s "$state/web/grid" "$omerodir/etc/grid"
find "$(setting web_home)" -mindepth 1 -delete
# The services' logs (supervisord's programs name them).
rm -rf /var/log/supervisor
ln -s "$state/log" /var/log/supervisor
if [ "$(setting server)" = True ]; then
    # The server writes var/ and rewrites etc/ at every start: both on the volume, etc/ copied
    # there from the image's at each start. Its home (keys, password files), the binary
    # repository and the configuration files (the build's passwords) are the build's alone.
    server=$(readlink -f "$(setting server_omerodir)")
    rm -rf "$server/var" "$server/etc/grid/config.xml" "$server/etc/grid/config.xml.lock"
    ln -s "$state/server/var" "$server/var"
    mv "$server/etc" "$(setting server_etc)"
    ln -s "$state/server/etc" "$server/etc"
    rm -rf "$(setting server_config_dir)"
    ln -s "$state/run/server-config" "$(setting server_config_dir)"
    for moved in "$(setting server_home):$state/server/home" "$(setting server_data_dir):$state/data"; do
        rm -rf "${moved%%:*}"
        ln -s "${moved#*:}" "${moved%%:*}"
    done
    chmod -R o+rX "$(setting server_etc)"
fi
# Any user may run the image (Apptainer runs it as the user): its configuration must be
# readable by all. None of it is secret: the secrets are made at start, on the volume.
chmod -R o+rX "$(dirname "$(setting postgres_conf)")" "$(setting web_config_dir)"

# The build's keys and trust: the snakeoil key (one for every copy of the image), the
# build machine's CAs and proxy settings.
rm -f /etc/ssl/private/ssl-cert-snakeoil.key /etc/ssl/certs/ssl-cert-snakeoil.pem
rm -f /usr/local/share/ca-certificates/omero-extra-*.crt /etc/apt/apt.conf.d/80omero-proxy \
      /opt/omero/*/venv3/pip.conf
update-ca-certificates --fresh >/dev/null

# Build leftovers: compilers and headers (IcePy is built), the deploy's records, wheels,
# package lists, logs, documentation. The apt and pip caches are mounts: never committed.
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq --auto-remove "$@" >/dev/null
rm -rf /var/lib/omero-pyinfra /opt/omero/wheels /opt/omero/downloads /opt/omero/server/downloads /var/lib/apt/lists/* \
       /var/cache/apt/*.bin /var/cache/debconf/*-old /usr/share/man/* /usr/share/info/*
find /usr/share/locale -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +  # translations
find /var/log -type f -delete
find /usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
find /usr/share/doc -mindepth 1 -type d -empty -delete
find /tmp -mindepth 1 -delete
