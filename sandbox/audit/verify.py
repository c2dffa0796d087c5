from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from sandbox.audit import repository
from sandbox.audit.log import entry_hash, hashed_fields
from sandbox.models import GENESIS_HASH


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_chain(session: Session) -> ChainReport:
    """Walk the chain in sequence order and name the first entry that does not hold."""
    head = repository.find_head(session)
    if head is None:
        return ChainReport(False, 0, None, "the chain's head row is missing: the log's end cannot be checked")
    head_seq, head_hash = head.last_seq, head.last_hash
    expected_seq, prev = 1, GENESIS_HASH
    checked = 0
    for entry in repository.iter_chain(session):
        if entry.seq != expected_seq:
            return ChainReport(
                False, checked, expected_seq, f"entry {expected_seq} is missing (next present is {entry.seq})"
            )
        if entry.prev_hash != prev:
            return ChainReport(
                False,
                checked,
                entry.seq,
                f"entry {entry.seq} does not link to entry {entry.seq - 1} (deleted or reordered)",
            )
        if entry_hash(hashed_fields(entry)) != entry.hash:
            return ChainReport(
                False, checked, entry.seq, f"entry {entry.seq} was altered: its content does not match its hash"
            )
        prev = entry.hash
        expected_seq += 1
        checked += 1
    if checked < head_seq:
        return ChainReport(
            False,
            checked,
            checked + 1,
            f"the chain ends at entry {checked} but its head records entry {head_seq}: entries were removed from the end",
        )
    if checked > head_seq:
        return ChainReport(
            False,
            checked,
            head_seq + 1,
            f"entries {head_seq + 1}..{checked} lie past the chain's head (entry {head_seq}): they were added outside the log",
        )
    if prev != head_hash:
        return ChainReport(
            False, checked, head_seq, f"entry {head_seq} is not the entry the chain's head records: it was replaced"
        )
    return ChainReport(True, checked)
