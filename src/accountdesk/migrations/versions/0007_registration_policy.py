"""registration: sign in from the registration answer only where the policy says so; self-registration needs
anonymous access

Every existing storefront takes the strict choice: a registration answer signs nobody in. Self-registration is
turned off, with an entry in the storefront's history, where anonymous access is off: that combination is refused
from now on, and turning registration off (rather than opening the storefront to anonymous visitors) keeps a
private storefront private.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

from accountdesk.core.db import UtcDateTime, utcnow

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

NOTE = 'Self-registration needs anonymous access (migration 0007).'


def upgrade() -> None:
    op.add_column('storefronts', sa.Column('sign_in_after_registration', sa.Boolean(), nullable=False,
                                           server_default=sa.false()))
    bind = op.get_bind()
    storefronts = sa.table('storefronts', sa.column('id', sa.BigInteger()),
                           sa.column('self_registration', sa.Boolean()), sa.column('anonymous_access', sa.Boolean()),
                           sa.column('reseller_account_id', sa.BigInteger()))
    audit = sa.table('audit_events', sa.column('occurred_at', UtcDateTime()),
                     sa.column('actor_type', sa.String()), sa.column('actor_id', sa.BigInteger()),
                     sa.column('actor_label', sa.String()), sa.column('subject_type', sa.String()),
                     sa.column('subject_id', sa.BigInteger()), sa.column('account_id', sa.BigInteger()),
                     sa.column('action', sa.String()), sa.column('changes', sa.JSON()), sa.column('note', sa.Text()))
    both = sa.and_(storefronts.c.self_registration.is_(True), storefronts.c.anonymous_access.is_(False))
    rows = bind.execute(sa.select(storefronts.c.id, storefronts.c.reseller_account_id).where(both)).all()
    if not rows:
        return
    bind.execute(storefronts.update().where(both).values(self_registration=False))
    now = utcnow()
    bind.execute(audit.insert(), [
        {'occurred_at': now, 'actor_type': 'system', 'actor_id': None, 'actor_label': 'system',
         'subject_type': 'storefront', 'subject_id': row.id, 'account_id': row.reseller_account_id,
         'action': 'storefront.policy_changed', 'changes': {'self_registration': [True, False]}, 'note': NOTE}
        for row in rows])


def downgrade() -> None:
    op.drop_column('storefronts', 'sign_in_after_registration')
    # self-registration is not turned back on: which storefronts had it is in their history
