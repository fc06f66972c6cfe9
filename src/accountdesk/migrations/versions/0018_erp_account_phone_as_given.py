"""accounts from the ERP keep a phone as the ERP gave it when it cannot be read as a number, flagged like a contact's
(0015) until staff correct it

Revision ID: 0018
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts') as batch:
        batch.add_column(sa.Column('phone_as_given', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('phone_as_given')
