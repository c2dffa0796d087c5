"""Users, roles and bearer tokens.

Invariants: a bureau user belongs to no institution and an institution user to exactly one;
tokens are random, stored only as a SHA-256 hash, and stop working once revoked or once their
user is deactivated; passwords are stored only as argon2 hashes.
"""
