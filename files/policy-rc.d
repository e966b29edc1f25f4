#!/bin/sh
# Managed by omero-pyinfra: supervisord, not package scripts, starts services here.
exit 101
