"""The working-day calendars the programs' schedules name, from ``<policies>/calendars``."""

from __future__ import annotations

import logging
from pathlib import Path

from sandbox.rules.calendar import CalendarFileError, WorkingCalendar, load_calendar_dir

log = logging.getLogger("sandbox.calendars")


def load_calendars(policies_dir: Path) -> dict[str, WorkingCalendar]:
    """All calendars, or none if the folder is missing or a file is bad (logged): filings then
    refuse with a clear message rather than count deadlines on a wrong calendar."""
    folder = policies_dir / "calendars"
    try:
        return load_calendar_dir(folder)
    except CalendarFileError as exc:
        log.error("calendars not loaded from %s: %s", folder, "; ".join(str(p) for p in exc.problems))
        return {}
