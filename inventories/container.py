"""A container (or chroot) target: no systemd as PID 1, so supervisord runs the services.

    scripts/deploy inventories/container.py

pyinfra enters the running container with its @docker connector; supervisord is chosen
because PID 1 is not systemd (omero_service_manager: auto). Behind a TLS-inspecting
proxy, hand its CA to the deploy so apt and pip inside trust it.
"""

omero_database = ["@docker/omero"]
omero_web = [("@docker/omero", {
    "omero_extra_ca_certificates": ["/usr/local/share/ca-certificates/lab-proxy-ca.crt"],
    "omero_pip_index_url": "https://pypi.lab.example.org/simple",
    "omero_web_workers": 3,
})]
