"""Problems found while loading resources: one line each, naming file, document, resource and field.

Errors and warnings share one type so every stage can return both in one list, and the
CLI prints them all at once instead of stopping at the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """Where (file, 1-based document index, resource, field path) and why, in one line."""

    file: str
    index: int | None
    resource: str | None
    field: str | None
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        parts = [self.file]
        if self.index is not None:
            parts.append(f"document {self.index}")
        if self.resource:
            parts.append(self.resource)
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts).replace("\n", " ")

    @property
    def is_error(self) -> bool:
        return self.severity == Severity.ERROR


@dataclass(frozen=True)
class Origin:
    """Where a resource came from; its position in load order defines "oldest"."""

    file: str
    index: int
    flat: bool = False  # universal Mesh/Dataplane/ZoneIngress written without `spec:`
    kubernetes: bool = False  # Kubernetes form: name and labels live under `metadata`

    def problem(
        self, resource: str | None, field: str | None, message: str, severity: Severity = Severity.ERROR
    ) -> Problem:
        return Problem(self.file, self.index, resource, self.show(field), message, severity)

    def warning(self, resource: str | None, field: str | None, message: str) -> Problem:
        return self.problem(resource, field, message, Severity.WARNING)

    def show(self, field: str | None) -> str | None:
        """Report a field path as the user wrote it: no ``spec.`` for flat universal documents."""
        if field and self.flat and field.startswith("spec."):
            return field[len("spec.") :]
        if field and self.kubernetes and (field == "name" or field == "labels" or field.startswith("labels.")):
            return f"metadata.{field}"
        return field
