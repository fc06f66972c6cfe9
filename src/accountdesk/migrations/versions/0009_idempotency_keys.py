"""idempotency keys: a creating request's key, its caller and its answer, so that a retry changes nothing twice

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

import accountdesk.core.db

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'idempotency_keys',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('scope', sa.String(length=120), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('lock_token', sa.String(length=32), nullable=True),
        sa.Column('locked_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column('response_status', sa.Integer(), nullable=True),
        sa.Column('response_headers', sa.JSON(), nullable=False),
        sa.Column('response_body', sa.LargeBinary(), nullable=True),
        sa.Column('created_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_idempotency_keys'),
        sa.UniqueConstraint('scope', 'key', name='uq_idempotency_keys_scope_key'),
    )
    op.create_index('ix_idempotency_keys_expires_at', 'idempotency_keys', ['expires_at'])


def downgrade() -> None:
    op.drop_index('ix_idempotency_keys_expires_at', table_name='idempotency_keys')
    op.drop_table('idempotency_keys')
