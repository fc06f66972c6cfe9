"""the account search gets a second trigram index (PostgreSQL), on the search text with '@', '.' and '-' written as
letters: there an e-mail is one word to pg_trgm, so a fragment such as "ffice@b" finds the accounts holding it
rather than every "office" and every word starting with "b" (accounts.service.WORD_MARKS and SEARCH_WORDS write
the same expression)

Revision ID: 0022
Revises: 0021
"""
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

SEARCH_WORDS = "replace(replace(replace(search_text, '@', '\u0250'), '.', '\u0257'), '-', '\u0266')"


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'CREATE INDEX ix_accounts_search_words_trgm ON accounts USING gin (({SEARCH_WORDS}) gin_trgm_ops)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_accounts_search_words_trgm')
