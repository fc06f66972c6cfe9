"""orders placed with a buyer's own credential carry no prices: line and order costs may be unknown (NULL)

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

COLUMNS = {'order_lines': (('unit_cost', sa.Numeric(14, 4)), ('line_cost', sa.Numeric(14, 2))),
           'orders': (('total_cost', sa.Numeric(14, 2)), ('total_amount', sa.Numeric(14, 2)))}


def _nullable(nullable: bool) -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, type_ in columns:
                batch.alter_column(name, existing_type=type_, nullable=nullable)


def upgrade() -> None:
    _nullable(True)


def downgrade() -> None:
    for table, columns in COLUMNS.items():  # unpriced orders go back as priced at zero
        for name, _ in columns:
            op.execute(sa.text(f'UPDATE {table} SET {name} = 0 WHERE {name} IS NULL'))
    _nullable(False)
