"""omero-backup's modules, installed by the deploy into a root-owned directory (see
files/omero-backup, the launcher)."""
