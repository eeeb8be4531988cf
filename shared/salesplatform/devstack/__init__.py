"""Development stack: real PostgreSQL and NATS servers for `make run` and the test suite."""

from salesplatform.devstack.servers import (
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
    "NatsServer",
    "PostgresServer",
    "ServerError",
    "build_dsn",
    "create_database",
    "create_service_database",
    "drop_database",
    "free_port",
]
