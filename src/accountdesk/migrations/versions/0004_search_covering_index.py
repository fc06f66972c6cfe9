"""account search: the name index carries search_text, so a common term walks names without reading rows

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX ix_accounts_name_id')
        op.execute('CREATE INDEX ix_accounts_name_id ON accounts (name, id) INCLUDE (search_text)')
    else:
        op.create_index('ix_accounts_name_id_search_text', 'accounts', ['name', 'id', 'search_text'])


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX ix_accounts_name_id')
        op.execute('CREATE INDEX ix_accounts_name_id ON accounts (name, id)')
    else:
        op.drop_index('ix_accounts_name_id_search_text', 'accounts')
