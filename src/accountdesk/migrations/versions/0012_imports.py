"""imports: the record of every customer file imported (who, when, file, counts), and the index through which an
import matches accounts by e-mail on a storefront

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

import accountdesk.core.db

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'imports',
        sa.Column('id', BigId, nullable=False),
        sa.Column('storefront_id', BigId, sa.ForeignKey('storefronts.id', name='fk_imports_storefront_id_storefronts'), nullable=False),
        sa.Column('staff_user_id', BigId, sa.ForeignKey('staff_users.id', ondelete='SET NULL', name='fk_imports_staff_user_id_staff_users'), nullable=True),
        sa.Column('actor_label', sa.String(length=320), nullable=False),
        sa.Column('file_name', sa.String(length=255), nullable=False),
        sa.Column('stored_name', sa.String(length=100), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('options', sa.JSON(), nullable=False),
        sa.Column('counts', sa.JSON(), nullable=False),
        sa.Column('welcome_until', accountdesk.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column('dry_run', sa.Boolean(), nullable=False),
        sa.Column('created_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column('finished_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_imports'),
    )
    op.create_index('ix_imports_storefront_id', 'imports', ['storefront_id'])
    op.create_index('ix_accounts_storefront_id_email', 'accounts', ['storefront_id', 'email'])


def downgrade() -> None:
    op.drop_index('ix_accounts_storefront_id_email', table_name='accounts')
    op.drop_index('ix_imports_storefront_id', table_name='imports')
    op.drop_table('imports')
