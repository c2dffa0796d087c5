"""The audit log: an append-only, hash-chained record of every change of state.

Invariants: an entry commits in the same transaction as the change it records (entries are
queued during the unit of work and written by the session's before-commit hook, after every
domain lock, so the chain's single head lock is always taken last and held briefly); sequence
numbers are gapless; each entry's hash covers its content and the previous hash, so editing,
deleting or reordering any entry is detected by ``verify_chain``.
"""
