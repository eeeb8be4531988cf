"""`python -m salesplatform.launch [serve | migrate]`: the entry point of a service's image.

One image template serves every service (the repository's `Dockerfile`); the image names its
service in `SALESPLATFORM_SERVICE`, and this runs `python -m <service>_service` with the same
arguments. In a container the HTTP API listens on every interface unless
`<SERVICE>_HTTP_HOST` says otherwise.
"""

from __future__ import annotations

import os
import re
import runpy

SERVICE_ENV = "SALESPLATFORM_SERVICE"


def main() -> None:
    service = os.environ.get(SERVICE_ENV, "")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", service):
        raise SystemExit(f"{SERVICE_ENV} must name the service to run (customer, visit, …), not {service!r}")
    os.environ.setdefault(f"{service.upper()}_HTTP_HOST", "0.0.0.0")
    runpy.run_module(f"{service}_service", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
