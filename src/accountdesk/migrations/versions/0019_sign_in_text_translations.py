"""a storefront's sign-in text in its other languages (`sign_in_text_translations`, {language: text}); the text in
its default language stays `sign_in_text`

Revision ID: 0019
Revises: 0018
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('storefronts') as batch:
        batch.add_column(sa.Column('sign_in_text_translations', sa.JSON(), nullable=False,
                                   server_default=sa.text("'{}'")))


def downgrade() -> None:
    with op.batch_alter_table('storefronts') as batch:
        batch.drop_column('sign_in_text_translations')
