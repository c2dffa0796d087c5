"""Due-diligence exemptions: the record that a loss in a pilot happened although the institution
met the policy's due-diligence criteria (``exemption`` section of the policy).

The system assesses (``assessment``: each listed criterion met or not, with its evidence; the
finding is "grant" only if all are met) when a loss is reported, when a loss rule breaches and
on an institution admin's claim. A bureau supervisor decides. A decision against the finding
needs a reason of at least 80 characters and takes effect only when a second bureau user
(supervisor or approver, not the decider) confirms it: four eyes. Decisions are final; every
change is audited.
"""
