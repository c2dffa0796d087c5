"""Programs and their policy versions.

A program is identified by its code; its limits live in policy versions loaded from
``policies/<code>.yaml``. Invariants guarded here: a loaded version is immutable and known by
its content hash; one version label never names two contents; loading is all-or-nothing (a bad
file, or a conflict with what is loaded, leaves every version in force untouched); the version
in force on a day is the one with the latest ``effective_from`` on or before it, and a new
version can never take effect before the latest one already loaded (history is not rewritten).
"""
