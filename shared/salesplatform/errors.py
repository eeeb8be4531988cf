"""Errors every transport maps the same way: 403, 404, 409, 422."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


class DomainError(ServiceError):
    """A business rule said no. Nothing was changed."""

    status = 409
    code = "rule_violated"


class ConcurrencyConflict(DomainError):
    """The stream moved on since it was read: another writer appended first."""

    code = "concurrency_conflict"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class PermissionDenied(ServiceError):
    status = 403
    code = "forbidden"


class Unauthenticated(ServiceError):
    status = 401
    code = "unauthenticated"


class Unavailable(ServiceError):
    """What the command needs is away for a moment (the database, NATS): nothing was judged,
    so the same command may be sent again (with the same Idempotency-Key)."""

    status = 503
    code = "unavailable"


class InvalidInput(ServiceError):
    """Input that does not have the right shape; `details` lists each problem."""

    status = 422
    code = "validation_failed"

    def __init__(self, details: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{d.get('field')}: {d.get('message')}" for d in details))
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": "the input is not valid", "details": self.details}


def from_validation_error(exc: Any) -> InvalidInput:
    """Turn a pydantic ValidationError into field-level details."""
    details = []
    for err in exc.errors(include_url=False):
        details.append(
            {
                "field": ".".join(str(p) for p in err.get("loc", ())) or None,
                "code": err.get("type", "invalid"),
                "message": err.get("msg", "invalid value"),
            }
        )
    return InvalidInput(details)
