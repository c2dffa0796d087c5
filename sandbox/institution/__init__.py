"""Institutions: the licensed bodies (banks, insurers, securities firms...) that run pilots.

Invariants:
- ``code``, ``uscc`` and ``lei`` are each unique; the USCC's two check characters (GB 32100 and
  the embedded GB 11714 organisation code) and the LEI's ISO 7064 check digits are verified
  before anything is stored.
- Ratios are exact decimals stored in canonical form (0.162, never 0.1620 or a float artefact):
  capital-adequacy and NPL ratios are fractions in [0, 1], solvency ratios fractions in [0, 100].
- Contact emails are valid single addresses, lower-cased, unique, at most 20, never carrying
  control characters (they become alert recipients and must not inject headers).
- Only a bureau admin registers institutions or changes them, status included; an institution
  admin may change only its own institution's contacts. Every change is audited with the
  before and after values of the fields that changed, and bumps ``version`` (the ETag).
- An institution's users see only their own institution; any other is "not found".
"""
