"""outbox messages name what they are about (an ERP push: "account-42"), so that whether a push of an account is
already waiting is one indexed lookup instead of reading every waiting push

The ERP pushes still waiting get their key from their payload.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox_messages') as batch:
        batch.add_column(sa.Column('subject_key', sa.String(length=100), nullable=True))
        batch.create_index('ix_outbox_messages_subject_key', ['subject_key'])
    outbox = sa.table('outbox_messages', sa.column('id', sa.BigInteger()), sa.column('kind', sa.String()),
                      sa.column('payload', sa.JSON()), sa.column('status', sa.String()),
                      sa.column('subject_key', sa.String()))
    bind = op.get_bind()
    waiting = bind.execute(sa.select(outbox.c.id, outbox.c.payload).where(
        outbox.c.kind == 'erp_push', outbox.c.status.in_(('pending', 'sending')))).all()
    for message_id, payload in waiting:
        bind.execute(outbox.update().where(outbox.c.id == message_id)
                     .values(subject_key=f"account-{payload['account_id']}"))


def downgrade() -> None:
    with op.batch_alter_table('outbox_messages') as batch:
        batch.drop_index('ix_outbox_messages_subject_key')
        batch.drop_column('subject_key')
