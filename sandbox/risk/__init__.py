"""Risk events: incidents an institution reports on its pilot (fraud, credit loss, operational
failure, cyber incident, complaint surge).

Invariants: only the pilot's own institution reports them (filers and institution admins);
``reported_at`` is the server's time, never the client's; an event cannot have occurred in the
future (bureau date) or before the pilot started; an amount is never negative. Events are never
edited. A loss (an amount above zero) under a policy with due-diligence criteria is assessed for
an exemption in the same transaction (see ``sandbox.exemption``).
"""
