"""Evaluations: one policy version judging one pilot-period.

Invariants: every evaluation stores the exact inputs it used (the filing version of each
period, the institution's facts, the granted quotas), so ``replay`` can re-derive it; a period
is judged by the policy version in force on its last day; the breakers step in the same
transaction as the evaluation, and a trip suspends the pilot in that transaction too.
"""
