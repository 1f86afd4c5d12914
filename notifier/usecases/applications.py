"""Each project's Svix application, created and recorded on first use, then remembered.

Messages address the application by the project id (its ``uid``), so this is not on the path of a
send: it keeps ``applications/{project}`` true for operators and the App Portal. The record never
changes once made, so each instance keeps what it has seen; steady state costs no call at all, a
new project one Firestore read, one Svix call and one write.
"""

from __future__ import annotations

import threading

from notifier.domain.errors import SvixConflict
from notifier.domain.ports import ApplicationCreator, ApplicationRecords


class ApplicationDirectory:
    """Projects' Svix applications: recorded once, then remembered by the instance."""

    def __init__(self, records: ApplicationRecords, creator: ApplicationCreator) -> None:
        self._records = records
        self._creator = creator
        self._known: dict[str, str] = {}
        self._lock = threading.Lock()

    def ensure(self, project: str) -> str:
        """The project's Svix application id; created and recorded if it is new."""
        known = self._known.get(project)
        if known is not None:
            return known
        app_id = self._records.application_id(project)
        if app_id is None:
            app_id = self._create(project)
            self._records.save_application(project, app_id)
        with self._lock:
            return self._known.setdefault(project, app_id)

    def _create(self, project: str) -> str:
        """Get-or-create; Svix creates check-then-insert, so two instances creating the same
        application at once can both miss the lookup, and the loser gets 409. The winner's
        application exists by then: a second call at once finds it (a second 409 is raised)."""
        try:
            return self._creator.ensure_application(project)
        except SvixConflict:
            return self._creator.ensure_application(project)
