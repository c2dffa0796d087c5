"""Breakers: the state of one trip rule on one pilot (see ``sandbox.rules.breaker`` for the
machine). Invariants: a breaker changes only by an evaluation step or a supervisor's command,
each recorded as a breaker event in order (their fold is the state, which ``replay`` checks);
a trip suspends the pilot in the same transaction; reset needs a reason and a bureau
supervisor; the pilot is resumed only by an approver other than the supervisor who reset.
"""
