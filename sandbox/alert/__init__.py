"""Alerts: the outbox of emails about what happened (SPEC sections 3 and 6).

An alert is one alerting event (a trip, a warning, a decision...); it has one delivery per
recipient, and each delivery is one email. Invariants:

- An alert is written in the transaction of its event (``outbox.emit`` flushes, never commits):
  if the event rolls back there is no alert; if it commits, the alert will be delivered.
- One event, one alert: the dedupe key is unique, so an event raised twice yields one alert.
- One email per recipient: recipients are validated, lower-cased and deduplicated, and
  (alert, recipient) is unique. An alert with no valid recipient is still recorded, failed,
  with the reason, so the bureau sees it.
- Each delivery has a Message-ID fixed when it is written and reused on every attempt.
- Deliveries are claimed under a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), sent outside
  any transaction, and settle as sent, or failed after a permanent refusal or the last attempt;
  a temporary failure retries with exponential backoff and jitter. A lease that runs out (a
  worker died) makes the delivery claimable again.
- The alert's state (pending, retrying, sent, failed) is derived from its deliveries and
  re-derived, with the alert row locked, whenever one of them settles or fails.
- Headers never carry data unfiltered: no CR, LF or other control character reaches them.
"""
