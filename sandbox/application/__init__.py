"""Applications: an institution's proposal to run a pilot under a program.

Invariants guarded here: every command goes through the transition table; requested scope lies
inside the program's scope universe, requested quotas inside the per-pilot caps, and the dates
inside the maximum duration (checked on every edit and again at submission against the policy
then in force); submission is refused, listing every failed criterion, for an ineligible
institution; the user who recommended an application can never decide it (four eyes); approval
creates the pilot and allocates its quotas against the program's aggregate caps atomically.
"""
