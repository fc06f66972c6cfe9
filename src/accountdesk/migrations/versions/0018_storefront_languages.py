"""storefronts say which languages their pages offer (`languages`): the visitor's Accept-Language and the language
switcher choose among them; every storefront there is offers all the product's languages, as before

Revision ID: 0018
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

EVERY_LANGUAGE = '["en", "fr", "de"]'  # the product's languages when this migration was written


def upgrade() -> None:
    with op.batch_alter_table('storefronts') as batch:
        batch.add_column(sa.Column('languages', sa.JSON(), nullable=False,
                                   server_default=sa.text(f"'{EVERY_LANGUAGE}'")))


def downgrade() -> None:
    with op.batch_alter_table('storefronts') as batch:
        batch.drop_column('languages')
