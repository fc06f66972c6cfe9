"""staff second factor: the sealed TOTP secret and last used time step, and one-time recovery codes

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

import accountdesk.core.db

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.add_column('staff_users', sa.Column('totp_secret', sa.String(length=255), nullable=True))
    op.add_column('staff_users', sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    op.add_column('staff_users', sa.Column('totp_enabled_at', accountdesk.core.db.UtcDateTime(timezone=True),
                                           nullable=True))
    op.create_table('staff_recovery_codes',
    sa.Column('id', BigId, nullable=False),
    sa.Column('staff_user_id', BigId, nullable=False),
    sa.Column('code_digest', sa.String(length=64), nullable=False),
    sa.Column('used_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('created_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_users.id'],
                            name=op.f('fk_staff_recovery_codes_staff_user_id_staff_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_recovery_codes'))
    )
    op.create_index(op.f('ix_staff_recovery_codes_staff_user_id'), 'staff_recovery_codes', ['staff_user_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_staff_recovery_codes_staff_user_id'), table_name='staff_recovery_codes')
    op.drop_table('staff_recovery_codes')
    # plain ALTER TABLE … DROP COLUMN (SQLite 3.35+): a batch copy would drop staff_users and cascade to sessions
    for column in ('totp_enabled_at', 'totp_last_step', 'totp_secret'):
        op.drop_column('staff_users', column)
