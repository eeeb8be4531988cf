"""The process that runs the orders service's history importer for figure 4.

`orders_service.importer.bench_import_async(n)` builds a scratch orders database (customers,
catalogue), imports `n` synthetic history records through the importer, imports them again
(which must append nothing), and COPYs the same events into a table shaped like `events`.
It runs as its own process so its memory is measured like a service's. Job on stdin, result on
stdout, both JSON:

    {"records": 20000, "admin_dsn": "postgresql://..."}  ->  {"events": ..., "seconds": ..., ...}
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import structlog


def main() -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    from orders_service.importer import bench_import_async

    job = json.loads(sys.stdin.read())
    result = asyncio.run(bench_import_async(job["records"], admin_dsn=job["admin_dsn"]))
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
