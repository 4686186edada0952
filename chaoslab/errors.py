"""The whole chaoslab exception tree.

::

    ChaoslabError                 anything chaoslab raises on purpose
    ├── InvalidInputError         a file or flag is wrong          → exit 2
    ├── PlanError                 inputs are valid but can't be planned → exit 2
    ├── BackendError              the system under test could not be driven → exit 3
    │   ├── KubernetesError       API server answered badly or not at all
    │   ├── PrometheusError       Prometheus answered badly or not at all
    │   ├── AlertmanagerError     Alertmanager answered badly or not at all
    │   ├── PreflightError        a selector matches no running pod (nothing was created)
    │   └── InjectionError        a fault was created but never took hold (it was removed)
    ├── CleanupError              a fault may remain                → exit 4
    └── LedgerError               the checklist database cannot be read or written → exit 3

A breached SLO is a result (``Verdict``), never an exception.
"""

from __future__ import annotations

from pathlib import Path


class ChaoslabError(Exception):
    """Base class of every error chaoslab raises on purpose."""


class InvalidInputError(ChaoslabError):
    """Bad input, located as ``file:line: field.path: reason``."""

    def __init__(
        self,
        path: str | Path | None,
        field: str,
        reason: str,
        *,
        line: int | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.field = field
        self.reason = reason
        self.line = line
        where = self.path or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        text = f"{where}: {field}: {reason}" if field else f"{where}: {reason}"
        super().__init__(text)


class PlanError(ChaoslabError):
    """Valid inputs that cannot be turned into a plan."""


class BackendError(ChaoslabError):
    """The chaos backend or the metrics source could not do what was asked."""


class KubernetesError(BackendError):
    """The Kubernetes API refused or failed a request."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class PrometheusError(BackendError):
    """Prometheus could not be queried."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        self.url = url
        self.status = status  # the HTTP status when Prometheus answered; None when it did not
        super().__init__(message)


class AlertmanagerError(BackendError):
    """Alertmanager could not be asked to silence, renew or expire."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        self.url = url
        self.status = status
        super().__init__(message)


class PreflightError(BackendError):
    """The fault was refused before anything was created."""


class InjectionError(BackendError):
    """The fault was created but did not take hold; it has been removed."""


class CleanupError(ChaoslabError):
    """A fault could not be removed; ``remaining`` names what may still be there."""

    def __init__(self, message: str, *, remaining: tuple[str, ...] = ()) -> None:
        self.remaining = remaining
        super().__init__(message)


class LedgerError(ChaoslabError):
    """The checklist ledger (``<reports>/chaoslab.db``) cannot be opened, read or written."""
