"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 18:19:22.864028
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from sqlalchemy.dialects import postgresql

import sandbox.models.base

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(length=254), nullable=False),
        sa.Column("action", sa.String(length=80), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("before", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("after", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_entries")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_entries_hash")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_audit_entries_object", ["object_type", "object_id"], unique=False)

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "institutions",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("lei", sa.String(length=20), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("capital_adequacy_ratio", sandbox.models.base.ExactDecimal(precision=38, scale=12), nullable=True),
        sa.Column("npl_ratio", sandbox.models.base.ExactDecimal(precision=38, scale=12), nullable=True),
        sa.Column("solvency_comprehensive", sandbox.models.base.ExactDecimal(precision=38, scale=12), nullable=True),
        sa.Column("solvency_core", sandbox.models.base.ExactDecimal(precision=38, scale=12), nullable=True),
        sa.Column("last_major_penalty_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("contact_emails", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("rating BETWEEN 1 AND 6", name=op.f("ck_institutions_rating_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_institutions")),
        sa.UniqueConstraint("code", name=op.f("uq_institutions_code")),
        sa.UniqueConstraint("lei", name=op.f("uq_institutions_lei")),
        sa.UniqueConstraint("uscc", name=op.f("uq_institutions_uscc")),
    )
    op.create_table(
        "programs",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("area", sa.String(length=60), nullable=False),
        sa.Column("created_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programs")),
        sa.UniqueConstraint("code", name=op.f("uq_programs_code")),
    )
    op.create_table(
        "policy_versions",
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("document", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("source_name", sa.String(length=300), nullable=False),
        sa.Column("source_text", sa.Text(), nullable=False),
        sa.Column("loaded_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("loaded_by", sa.String(length=254), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_policy_versions_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_versions")),
        sa.UniqueConstraint("program_id", "content_hash", name=op.f("uq_policy_versions_program_id_content_hash")),
        sa.UniqueConstraint("program_id", "version", name=op.f("uq_policy_versions_program_id_version")),
    )
    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_policy_versions_program_id"), ["program_id"], unique=False)

    op.create_table(
        "users",
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["institution_id"], ["institutions.id"], name=op.f("fk_users_institution_id_institutions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_institution_id"), ["institution_id"], unique=False)

    op.create_table(
        "api_tokens",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "applications",
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("requested_scope", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("requested_quotas", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("end_on", sa.Date(), nullable=False),
        sa.Column("risk_controls", sa.Text(), nullable=False),
        sa.Column("consumer_protection", sa.Text(), nullable=False),
        sa.Column("exit_plan", sa.Text(), nullable=False),
        sa.Column("policy_version_id", sa.Uuid(), nullable=True),
        sa.Column("eligibility", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("submitted_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("recommendation", sa.String(length=10), nullable=True),
        sa.Column("recommendation_reason", sa.Text(), nullable=True),
        sa.Column("recommended_by_id", sa.Uuid(), nullable=True),
        sa.Column("recommended_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_applications_created_by_id_users")),
        sa.ForeignKeyConstraint(["decided_by_id"], ["users.id"], name=op.f("fk_applications_decided_by_id_users")),
        sa.ForeignKeyConstraint(
            ["institution_id"], ["institutions.id"], name=op.f("fk_applications_institution_id_institutions")
        ),
        sa.ForeignKeyConstraint(
            ["policy_version_id"],
            ["policy_versions.id"],
            name=op.f("fk_applications_policy_version_id_policy_versions"),
        ),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_applications_program_id_programs")),
        sa.ForeignKeyConstraint(
            ["recommended_by_id"], ["users.id"], name=op.f("fk_applications_recommended_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
    )
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_applications_institution_id"), ["institution_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_applications_program_id"), ["program_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_applications_state"), ["state"], unique=False)

    op.create_table(
        "application_messages",
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"], ["applications.id"], name=op.f("fk_application_messages_application_id_applications")
        ),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_application_messages_author_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_application_messages")),
    )
    with op.batch_alter_table("application_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_application_messages_application_id"), ["application_id"], unique=False)

    op.create_table(
        "pilots",
        sa.Column("reference", sa.String(length=60), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=False),
        sa.Column("institution_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("granted_scope", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("conditions", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("end_on", sa.Date(), nullable=False),
        sa.Column("original_end_on", sa.Date(), nullable=False),
        sa.Column("extensions", sa.Integer(), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("approved_by_id", sa.Uuid(), nullable=False),
        sa.Column("approved_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"], ["applications.id"], name=op.f("fk_pilots_application_id_applications")
        ),
        sa.ForeignKeyConstraint(["approved_by_id"], ["users.id"], name=op.f("fk_pilots_approved_by_id_users")),
        sa.ForeignKeyConstraint(
            ["institution_id"], ["institutions.id"], name=op.f("fk_pilots_institution_id_institutions")
        ),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_pilots_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pilots")),
        sa.UniqueConstraint("application_id", name=op.f("uq_pilots_application_id")),
        sa.UniqueConstraint("reference", name=op.f("uq_pilots_reference")),
    )
    with op.batch_alter_table("pilots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pilots_institution_id"), ["institution_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pilots_program_id"), ["program_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pilots_state"), ["state"], unique=False)

    op.create_table(
        "quota_allocations",
        sa.Column("pilot_id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.Uuid(), nullable=False),
        sa.Column("quota", sa.String(length=60), nullable=False),
        sa.Column("amount", sandbox.models.base.ExactDecimal(precision=38, scale=12), nullable=False),
        sa.Column("allocated_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("released_at", sandbox.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_quota_allocations_amount_positive")),
        sa.ForeignKeyConstraint(["pilot_id"], ["pilots.id"], name=op.f("fk_quota_allocations_pilot_id_pilots")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_quota_allocations_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_allocations")),
        sa.UniqueConstraint("pilot_id", "quota", name=op.f("uq_quota_allocations_pilot_id_quota")),
    )
    with op.batch_alter_table("quota_allocations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quota_allocations_pilot_id"), ["pilot_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_quota_allocations_program_id"), ["program_id"], unique=False)

    op.bulk_insert(
        sa.table(
            "audit_head",
            sa.column("id", sa.Integer()),
            sa.column("last_seq", sa.BigInteger()),
            sa.column("last_hash", sa.String()),
        ),
        [{"id": 1, "last_seq": 0, "last_hash": "0" * 64}],
    )


def downgrade() -> None:
    with op.batch_alter_table("quota_allocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quota_allocations_program_id"))
        batch_op.drop_index(batch_op.f("ix_quota_allocations_pilot_id"))

    op.drop_table("quota_allocations")
    with op.batch_alter_table("pilots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pilots_state"))
        batch_op.drop_index(batch_op.f("ix_pilots_program_id"))
        batch_op.drop_index(batch_op.f("ix_pilots_institution_id"))

    op.drop_table("pilots")
    with op.batch_alter_table("application_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_application_messages_application_id"))

    op.drop_table("application_messages")
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_applications_state"))
        batch_op.drop_index(batch_op.f("ix_applications_program_id"))
        batch_op.drop_index(batch_op.f("ix_applications_institution_id"))

    op.drop_table("applications")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))

    op.drop_table("api_tokens")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_institution_id"))

    op.drop_table("users")
    with op.batch_alter_table("policy_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_versions_program_id"))

    op.drop_table("policy_versions")
    op.drop_table("programs")
    op.drop_table("institutions")
    op.drop_table("audit_head")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_object")

    op.drop_table("audit_entries")
