"""contacts from the ERP: a phone kept as the ERP gave it (it could not be read as a number), and a login the ERP
check at sign-in deactivated (the ERP no longer vouched for it), which that check reactivates once the ERP does again

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('contacts') as batch:
        batch.add_column(sa.Column('phone_as_given', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column('deactivated_by_erp', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('contacts') as batch:
        batch.drop_column('deactivated_by_erp')
        batch.drop_column('phone_as_given')
