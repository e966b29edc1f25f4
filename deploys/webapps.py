"""The OMERO.web apps this deploy knows how to install, each registered as its own
documentation says (its README on PyPI): the Django app, links, "Open with" entries.

An app's registration is a list of `omero load` lines appended to OMERO.web's
configuration after the site's own settings; the configuration is rebuilt from files on
every change, so an app taken out of ``omero_web_apps`` leaves nothing registered.
"""

import json
from dataclasses import dataclass


def _append(key: str, value) -> str:
    return f"config append -- {key} '{json.dumps(value)}'"


@dataclass(frozen=True)
class WebApp:
    package: str  # on PyPI, as named in omero_web_apps
    version: str  # tested with omero-web 5.33.2
    module: str  # the Django app, in omero.web.apps
    path: str  # where OMERO.web serves it
    static_dir: str  # below the static root, removed with the app
    config: tuple[str, ...] = ()  # `omero load` lines besides omero.web.apps
    server_packages: tuple[str, ...] = ()  # in the OMERO.server venv, for its scripts
    server_script: str | None = None  # a script of the app OMERO.server runs, below lib/scripts

    @property
    def registration(self) -> tuple[str, ...]:
        return (_append("omero.web.apps", self.module), *self.config)


APPS: dict[str, WebApp] = {app.package: app for app in (
    WebApp(
        "omero-figure", "8.0.1", "omero_figure", "/figure/", "omero_figure",
        config=(
            _append("omero.web.ui.top_links",
                    ["Figure", "figure_index", {"title": "Open Figure in new tab", "target": "_blank"}]),
            _append("omero.web.open_with",
                    ["omero_figure", "new_figure",
                     {"supported_objects": ["images"], "target": "_blank", "label": "OMERO.figure"}]),
        ),
        # Figure_To_Pdf.py exports figures as PDF or TIFF on the server.
        server_packages=("reportlab", "markdown"),
        server_script="omero/figure_scripts/Figure_To_Pdf.py",
    ),
    WebApp(
        "omero-iviewer", "0.19.1", "omero_iviewer", "/iviewer/", "omero_iviewer",
        config=(
            "config set omero.web.viewer.view omero_iviewer.views.index",
            _append("omero.web.open_with",
                    ["omero_iviewer", "omero_iviewer_index",
                     {"supported_objects": ["images", "dataset", "well"],
                      "script_url": "omero_iviewer/openwith.js", "label": "OMERO.iviewer"}]),
        ),
    ),
    WebApp(
        "omero-parade", "0.2.4", "omero_parade", "/parade/", "omero_parade",
        config=(
            _append("omero.web.ui.center_plugins",
                    ["Parade", "omero_parade/init.js.html", "omero_parade"]),
        ),
    ),
    WebApp(
        "omero-mapr", "0.5.3", "omero_mapr", "/mapr/", "mapr",
        # Search the key-value pairs users add in the webclient (any key).
        config=(
            _append("omero.web.mapr.config",
                    {"menu": "keyvalue", "config": {
                        "default": ["Any Value"], "all": [],
                        "ns": ["openmicroscopy.org/omero/client/mapAnnotation"], "label": "Key-Value"}}),
            _append("omero.web.ui.top_links",
                    ["Key-Value", {"viewname": "maprindex_keyvalue"}, {"title": "Find key-value annotations"}]),
        ),
    ),
)}
