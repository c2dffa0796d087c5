"""filings evaluations breakers risk events exemptions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 18:51:39.831623
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from sqlalchemy.dialects import postgresql

import sandbox.models.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("created_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"], ["institutions.id"], name=op.f("fk_idempotency_keys_institution_id_institutions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("institution_id", "key", name=op.f("uq_idempotency_keys_institution_id_key")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotency_keys_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "filings",
        sa.Column("pilot_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("period_ordinal", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("due_estimated", sa.Boolean(), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["pilot_id"], ["pilots.id"], name=op.f("fk_filings_pilot_id_pilots")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filings")),
        sa.UniqueConstraint("pilot_id", "period", name=op.f("uq_filings_pilot_id_period")),
    )
    with op.batch_alter_table("filings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_filings_pilot_id"), ["pilot_id"], unique=False)

    op.create_table(
        "risk_events",
        sa.Column("pilot_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("reported_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("amount", sandbox.models.base.ExactDecimal(precision=38, scale=12), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("reported_by_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["pilot_id"], ["pilots.id"], name=op.f("fk_risk_events_pilot_id_pilots")),
        sa.ForeignKeyConstraint(["reported_by_id"], ["users.id"], name=op.f("fk_risk_events_reported_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_events")),
    )
    with op.batch_alter_table("risk_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_risk_events_pilot_id"), ["pilot_id"], unique=False)

    op.create_table(
        "filing_versions",
        sa.Column("filing_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("breakdown", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("received_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("days_late", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("submitted_by_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["filing_id"], ["filings.id"], name=op.f("fk_filing_versions_filing_id_filings")),
        sa.ForeignKeyConstraint(
            ["submitted_by_id"], ["users.id"], name=op.f("fk_filing_versions_submitted_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filing_versions")),
        sa.UniqueConstraint("filing_id", "version", name=op.f("uq_filing_versions_filing_id_version")),
    )
    with op.batch_alter_table("filing_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_filing_versions_filing_id"), ["filing_id"], unique=False)

    op.create_table(
        "evaluations",
        sa.Column("pilot_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("period_ordinal", sa.Integer(), nullable=False),
        sa.Column("policy_version_id", sa.Uuid(), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("filing_version_id", sa.Uuid(), nullable=True),
        sa.Column("inputs", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("outcomes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("evaluated_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["filing_version_id"], ["filing_versions.id"], name=op.f("fk_evaluations_filing_version_id_filing_versions")
        ),
        sa.ForeignKeyConstraint(["pilot_id"], ["pilots.id"], name=op.f("fk_evaluations_pilot_id_pilots")),
        sa.ForeignKeyConstraint(
            ["policy_version_id"], ["policy_versions.id"], name=op.f("fk_evaluations_policy_version_id_policy_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
    )
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evaluations_pilot_id"), ["pilot_id"], unique=False)
        batch_op.create_index("ix_evaluations_pilot_period", ["pilot_id", "period_ordinal"], unique=False)

    op.create_table(
        "breakers",
        sa.Column("pilot_id", sa.Uuid(), nullable=False),
        sa.Column("rule_id", sa.String(length=60), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("memory", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("trips", sa.Integer(), nullable=False),
        sa.Column("last_tripped_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_evaluation_id", sa.Uuid(), nullable=True),
        sa.Column("reset_by_id", sa.Uuid(), nullable=True),
        sa.Column("reset_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["last_evaluation_id"], ["evaluations.id"], name=op.f("fk_breakers_last_evaluation_id_evaluations")
        ),
        sa.ForeignKeyConstraint(["pilot_id"], ["pilots.id"], name=op.f("fk_breakers_pilot_id_pilots")),
        sa.ForeignKeyConstraint(["reset_by_id"], ["users.id"], name=op.f("fk_breakers_reset_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breakers")),
        sa.UniqueConstraint("pilot_id", "rule_id", name=op.f("uq_breakers_pilot_id_rule_id")),
    )
    with op.batch_alter_table("breakers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_breakers_pilot_id"), ["pilot_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_breakers_state"), ["state"], unique=False)

    op.create_table(
        "exemptions",
        sa.Column("pilot_id", sa.Uuid(), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("risk_event_id", sa.Uuid(), nullable=True),
        sa.Column("rule_id", sa.String(length=60), nullable=True),
        sa.Column("evaluation_id", sa.Uuid(), nullable=True),
        sa.Column("policy_version_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("assessment", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("finding", sa.String(length=10), nullable=False),
        sa.Column("statement", sa.Text(), nullable=True),
        sa.Column("claimed_by_id", sa.Uuid(), nullable=True),
        sa.Column("decision", sa.String(length=10), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("decided_by_id", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("confirmed_by_id", sa.Uuid(), nullable=True),
        sa.Column("confirmation_reason", sa.Text(), nullable=True),
        sa.Column("confirmed_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["claimed_by_id"], ["users.id"], name=op.f("fk_exemptions_claimed_by_id_users")),
        sa.ForeignKeyConstraint(["confirmed_by_id"], ["users.id"], name=op.f("fk_exemptions_confirmed_by_id_users")),
        sa.ForeignKeyConstraint(["decided_by_id"], ["users.id"], name=op.f("fk_exemptions_decided_by_id_users")),
        sa.ForeignKeyConstraint(
            ["evaluation_id"], ["evaluations.id"], name=op.f("fk_exemptions_evaluation_id_evaluations")
        ),
        sa.ForeignKeyConstraint(["pilot_id"], ["pilots.id"], name=op.f("fk_exemptions_pilot_id_pilots")),
        sa.ForeignKeyConstraint(
            ["policy_version_id"], ["policy_versions.id"], name=op.f("fk_exemptions_policy_version_id_policy_versions")
        ),
        sa.ForeignKeyConstraint(
            ["risk_event_id"], ["risk_events.id"], name=op.f("fk_exemptions_risk_event_id_risk_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exemptions")),
    )
    with op.batch_alter_table("exemptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exemptions_pilot_id"), ["pilot_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_exemptions_state"), ["state"], unique=False)

    op.create_table(
        "breaker_events",
        sa.Column("breaker_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("evaluation_id", sa.Uuid(), nullable=True),
        sa.Column("period", sa.String(length=10), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=True),
        sa.Column("state_before", sa.String(length=20), nullable=False),
        sa.Column("state_after", sa.String(length=20), nullable=False),
        sa.Column("memory_after", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("signals", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_breaker_events_actor_id_users")),
        sa.ForeignKeyConstraint(["breaker_id"], ["breakers.id"], name=op.f("fk_breaker_events_breaker_id_breakers")),
        sa.ForeignKeyConstraint(
            ["evaluation_id"], ["evaluations.id"], name=op.f("fk_breaker_events_evaluation_id_evaluations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breaker_events")),
    )
    with op.batch_alter_table("breaker_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_breaker_events_breaker_id"), ["breaker_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("breaker_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_breaker_events_breaker_id"))

    op.drop_table("breaker_events")
    with op.batch_alter_table("exemptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exemptions_state"))
        batch_op.drop_index(batch_op.f("ix_exemptions_pilot_id"))

    op.drop_table("exemptions")
    with op.batch_alter_table("breakers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_breakers_state"))
        batch_op.drop_index(batch_op.f("ix_breakers_pilot_id"))

    op.drop_table("breakers")
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.drop_index("ix_evaluations_pilot_period")
        batch_op.drop_index(batch_op.f("ix_evaluations_pilot_id"))

    op.drop_table("evaluations")
    with op.batch_alter_table("filing_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_filing_versions_filing_id"))

    op.drop_table("filing_versions")
    with op.batch_alter_table("risk_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_risk_events_pilot_id"))

    op.drop_table("risk_events")
    with op.batch_alter_table("filings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_filings_pilot_id"))

    op.drop_table("filings")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_expires_at"))

    op.drop_table("idempotency_keys")
