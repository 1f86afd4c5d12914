"""Which Svix application serves a project: created on first use, then remembered.

The mapping never changes once made, so each instance keeps it in memory; steady state costs no
call at all, and a new project costs one Firestore read, one Svix call and one write.
"""

from __future__ import annotations

import threading
from typing import Protocol


class ApplicationRecords(Protocol):
    def application_id(self, project: str) -> str | None: ...
    def save_application(self, project: str, svix_app_id: str) -> None: ...


class ApplicationCreator(Protocol):
    def ensure_application(self, project: str) -> str: ...


class ApplicationDirectory:
    def __init__(self, records: ApplicationRecords, creator: ApplicationCreator) -> None:
        self._records = records
        self._creator = creator
        self._known: dict[str, str] = {}
        self._lock = threading.Lock()

    def app_id(self, project: str) -> str:
        known = self._known.get(project)
        if known is not None:
            return known
        app_id = self._records.application_id(project)
        if app_id is None:
            app_id = self._creator.ensure_application(project)  # get-or-create: safe to race
            self._records.save_application(project, app_id)
        with self._lock:
            return self._known.setdefault(project, app_id)
