"""The public register: who tests what, since when, in what state. Never metrics, contacts or
internal notes; no sign-in."""
