"""A ready OMERO image (Docker, Podman, Apptainer) made by running deploy.py into a container."""
