"""personal data and company e-mail domains: a legal hold on accounts and contacts (erasure is refused while it is
on), when a contact's personal data was erased, the e-mail domains an account claims (verified ones let registrants
join it) and whether such a registrant joins at once or after the account admin's approval

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

from accountdesk.core.db import BigId, UtcDateTime

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts') as batch:
        batch.add_column(sa.Column('legal_hold', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column('domain_join', sa.String(length=10), server_default='approval', nullable=False))
    with op.batch_alter_table('contacts') as batch:
        batch.add_column(sa.Column('legal_hold', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column('erased_at', UtcDateTime(timezone=True), nullable=True))
    op.create_table(
        'account_domains',
        sa.Column('id', BigId, nullable=False),
        sa.Column('account_id', BigId, nullable=False),
        sa.Column('domain', sa.String(length=253), nullable=False),
        sa.Column('verification_token', sa.String(length=64), nullable=False),
        sa.Column('verified_at', UtcDateTime(timezone=True), nullable=True),
        sa.Column('verified_by', sa.String(length=10), nullable=False),
        sa.Column('created_at', UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_account_domains_account_id_accounts'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_account_domains')),
        sa.UniqueConstraint('account_id', 'domain', name=op.f('uq_account_domains_account_id_domain')),
    )
    op.create_index(op.f('ix_account_domains_account_id'), 'account_domains', ['account_id'])
    op.create_index(op.f('ux_account_domains_verified_domain'), 'account_domains', ['domain'], unique=True,
                    postgresql_where=sa.text('verified_at IS NOT NULL'), sqlite_where=sa.text('verified_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_table('account_domains')
    with op.batch_alter_table('contacts') as batch:
        batch.drop_column('erased_at')
        batch.drop_column('legal_hold')
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('domain_join')
        batch.drop_column('legal_hold')
