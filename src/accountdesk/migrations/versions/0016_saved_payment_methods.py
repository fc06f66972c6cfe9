"""saved payment methods: references to the methods a payment provider keeps for an account or one of its
contacts (the provider's token id, brand, last four digits, expiry, holder), never card numbers

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

from accountdesk.core.db import BigId, UtcDateTime

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'saved_payment_methods',
        sa.Column('id', BigId, nullable=False),
        sa.Column('account_id', BigId, nullable=False),
        sa.Column('contact_id', BigId, nullable=True),
        sa.Column('provider', sa.String(length=40), nullable=False),
        sa.Column('provider_token_id', sa.String(length=200), nullable=False),
        sa.Column('brand', sa.String(length=20), nullable=False),
        sa.Column('last4', sa.String(length=4), nullable=False),
        sa.Column('expiry_month', sa.Integer(), nullable=False),
        sa.Column('expiry_year', sa.Integer(), nullable=False),
        sa.Column('holder_name', sa.String(length=200), nullable=False),
        sa.Column('created_at', UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'],
                                name=op.f('fk_saved_payment_methods_account_id_accounts'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'],
                                name=op.f('fk_saved_payment_methods_contact_id_contacts'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_payment_methods')),
        sa.UniqueConstraint('account_id', 'provider', 'provider_token_id',
                            name=op.f('uq_saved_payment_methods_account_id_provider_provider_token_id')),
    )
    op.create_index(op.f('ix_saved_payment_methods_account_id'), 'saved_payment_methods', ['account_id'])
    op.create_index(op.f('ix_saved_payment_methods_contact_id'), 'saved_payment_methods', ['contact_id'])


def downgrade() -> None:
    op.drop_table('saved_payment_methods')
