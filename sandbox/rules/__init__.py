"""The regulatory core, pure: policy documents, their safe parsing, eligibility and (with the
rules-engine issue) expressions and evaluation. Imports neither SQLAlchemy nor FastAPI, so it is
deterministic from its inputs and tested in milliseconds."""
