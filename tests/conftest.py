"""Loaded before any test module. pyinfra's CLI package patches the standard library with
gevent when it is first imported (the plan tests import it). Patched after urllib3 has
taken ssl's classes, every HTTPS request of requests recurses (gevent issue 1016), so
patch first, for every test alike."""

import pyinfra_cli  # noqa: F401
