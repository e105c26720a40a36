"""All ORM models, one file per aggregate, sharing one metadata.

Importing this package registers every table; add a new models file's import here.
"""

# Domain model modules added by later features register themselves below.
from recoup.models import registry as _registry  # noqa: F401
from recoup.models.account import Account, DelinquencyEvent, Payment
from recoup.models.audit import AuditChainHead, AuditEvent
from recoup.models.base import Base
from recoup.models.debtor import ContactPoint, Debtor
from recoup.models.identity import ApiKey, Role, User
from recoup.models.institution import Institution, Jurisdiction, Preset

__all__ = [
    "Account",
    "ApiKey",
    "AuditChainHead",
    "AuditEvent",
    "Base",
    "ContactPoint",
    "Debtor",
    "DelinquencyEvent",
    "Institution",
    "Jurisdiction",
    "Payment",
    "Preset",
    "Role",
    "User",
]
