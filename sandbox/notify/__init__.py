"""Notifications: which events alert whom. Every function here writes its alert to the outbox
in the caller's transaction (so an event that rolls back alerts nobody, and one that commits
will be delivered by the worker), with a dedupe key so an event raised twice alerts once.

Recipients: the bureau lists the program's policy names per severity (``alerts`` section) and
the institution's contact emails. Warnings for a suspended pilot are held back (the trip says
more). All findings of one evaluation go out as one email per recipient."""
