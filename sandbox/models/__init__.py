"""All ORM tables, one module per aggregate, sharing one metadata for Alembic."""

from sandbox.models.alert import (
    FINAL_DELIVERY_STATES,
    Alert,
    AlertDelivery,
    AlertSeverity,
    AlertState,
    DeliveryState,
)
from sandbox.models.application import (
    Application,
    ApplicationMessage,
    ApplicationState,
    MessageKind,
)
from sandbox.models.audit import GENESIS_HASH, AuditEntry, AuditHead
from sandbox.models.base import Base
from sandbox.models.filing import (
    Breaker,
    BreakerEvent,
    BreakerState,
    Evaluation,
    Filing,
    FilingChannel,
    FilingVersion,
    IdempotencyKey,
)
from sandbox.models.institution import Institution, InstitutionStatus
from sandbox.models.pilot import LIVE_PILOT_STATES, Pilot, PilotState, QuotaAllocation
from sandbox.models.program import PolicyVersion, Program
from sandbox.models.risk import Exemption, ExemptionState, RiskEvent, RiskEventKind
from sandbox.models.user import BUREAU_ROLES, INSTITUTION_ROLES, ApiToken, Role, User
from sandbox.rules.vocabulary import InstitutionType

__all__ = [
    "BUREAU_ROLES",
    "FINAL_DELIVERY_STATES",
    "GENESIS_HASH",
    "INSTITUTION_ROLES",
    "LIVE_PILOT_STATES",
    "Alert",
    "AlertDelivery",
    "AlertSeverity",
    "AlertState",
    "ApiToken",
    "Application",
    "ApplicationMessage",
    "ApplicationState",
    "AuditEntry",
    "AuditHead",
    "Base",
    "Breaker",
    "BreakerEvent",
    "BreakerState",
    "DeliveryState",
    "Evaluation",
    "Exemption",
    "ExemptionState",
    "Filing",
    "FilingChannel",
    "FilingVersion",
    "IdempotencyKey",
    "Institution",
    "InstitutionStatus",
    "InstitutionType",
    "MessageKind",
    "Pilot",
    "PilotState",
    "PolicyVersion",
    "Program",
    "QuotaAllocation",
    "RiskEvent",
    "RiskEventKind",
    "Role",
    "User",
]
