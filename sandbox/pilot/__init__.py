"""Pilots: what an approved application becomes.

Invariants guarded here: the sum of quotas granted to a program's live pilots never exceeds the
program's aggregate caps, even when approvals race (every allocation first locks the program
row, so allocations for one program are serialised); granted scope and quotas are never wider
than requested; every change of state goes through the transition table and is audited; a pilot
that ends (completed, terminated, withdrawn, expired) releases its quotas; extensions stay
within the program's maximum duration and number of extensions.
"""
