"""why a webhook endpoint is disabled is kept as a code ("by_staff", "failing"), put in words in the reader's language
where it is shown, instead of an English sentence

Revision ID: 0021
Revises: 0020
"""
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE webhook_endpoints SET disabled_reason = 'by_staff' WHERE disabled_reason = 'disabled by staff'")
    op.execute("UPDATE webhook_endpoints SET disabled_reason = 'failing' "
               "WHERE disabled_reason LIKE 'every delivery failed%'")


def downgrade() -> None:
    op.execute("UPDATE webhook_endpoints SET disabled_reason = 'disabled by staff' WHERE disabled_reason = 'by_staff'")
    op.execute("UPDATE webhook_endpoints SET disabled_reason = 'every delivery failed' WHERE disabled_reason = 'failing'")
