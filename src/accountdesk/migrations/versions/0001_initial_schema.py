"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 03:29:20.102680
"""
import sqlalchemy as sa
from alembic import op

import accountdesk.core.db

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('occurred_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('actor_type', sa.String(length=20), nullable=False),
    sa.Column('actor_id', sa.BigInteger(), nullable=True),
    sa.Column('actor_label', sa.String(length=320), nullable=False),
    sa.Column('subject_type', sa.String(length=30), nullable=False),
    sa.Column('subject_id', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=True),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_account_id'), ['account_id'], unique=False)

    op.create_table('custom_attribute_definitions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=60), nullable=False),
    sa.Column('label', sa.String(length=120), nullable=False),
    sa.Column('type', sa.String(length=10), nullable=False),
    sa.Column('choices', sa.JSON(), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_custom_attribute_definitions')),
    sa.UniqueConstraint('key', name=op.f('uq_custom_attribute_definitions_key'))
    )
    op.create_table('number_sequences',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('last_value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_number_sequences'))
    )
    op.create_table('outbox_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('locked_until', accountdesk.core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_messages_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)

    op.create_table('rate_limit_hits',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('hit_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_limit_hits'))
    )
    with op.batch_alter_table('rate_limit_hits', schema=None) as batch_op:
        batch_op.create_index('ix_rate_limit_hits_key_hit_at', ['key', 'hit_at'], unique=False)

    op.create_table('storefronts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('reseller_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('default_language', sa.String(length=8), nullable=False),
    sa.Column('anonymous_access', sa.Boolean(), nullable=False),
    sa.Column('self_registration', sa.Boolean(), nullable=False),
    sa.Column('registration_mode', sa.String(length=20), nullable=False),
    sa.Column('sign_in_text', sa.Text(), nullable=False),
    sa.Column('verification_required_before_ordering', sa.Boolean(), nullable=False),
    sa.Column('new_contact_for_existing_account', sa.Boolean(), nullable=False),
    sa.Column('new_contact_requires_approval', sa.Boolean(), nullable=False),
    sa.Column('invoice_window_days', sa.Integer(), nullable=False),
    sa.Column('allow_reseller_registration', sa.Boolean(), nullable=False),
    sa.Column('default_payment_method', sa.String(length=20), nullable=False),
    sa.Column('default_payment_terms', sa.String(length=40), nullable=False),
    sa.Column('default_prorate_billing', sa.Boolean(), nullable=False),
    sa.Column('default_billing_day', sa.Integer(), nullable=False),
    sa.Column('default_partial_charges_invoicing', sa.String(length=20), nullable=False),
    sa.Column('default_auto_invoice_email', sa.Boolean(), nullable=False),
    sa.Column('default_currency', sa.String(length=3), nullable=False),
    sa.Column('default_customer_group', sa.String(length=40), nullable=False),
    sa.Column('default_price_group', sa.String(length=40), nullable=False),
    sa.Column('default_rep_code', sa.String(length=40), nullable=False),
    sa.Column('account_number_prefix', sa.String(length=10), nullable=False),
    sa.Column('password_min_length', sa.Integer(), nullable=False),
    sa.Column('password_max_length', sa.Integer(), nullable=False),
    sa.Column('password_require_character_classes', sa.Boolean(), nullable=False),
    sa.Column('password_reject_common', sa.Boolean(), nullable=False),
    sa.Column('allow_manual_password', sa.Boolean(), nullable=False),
    sa.Column('staff_notification_to', sa.Text(), nullable=False),
    sa.Column('staff_notification_cc', sa.Text(), nullable=False),
    sa.Column('staff_notification_bcc', sa.Text(), nullable=False),
    sa.Column('erp_cash_account_code', sa.String(length=40), nullable=False),
    sa.Column('erp_excluded_account_codes', sa.Text(), nullable=False),
    sa.Column('erp_unreachable_policy', sa.String(length=10), nullable=False),
    sa.Column('erp_stale_hours', sa.Integer(), nullable=False),
    sa.Column('erp_sync', sa.String(length=20), nullable=False),
    sa.Column('inactivity_days', sa.Integer(), nullable=False),
    sa.Column('created_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_storefronts')),
    sa.UniqueConstraint('slug', name=op.f('uq_storefronts_slug'))
    )
    with op.batch_alter_table('storefronts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_storefronts_reseller_account_id'), ['reseller_account_id'], unique=False)

    op.create_table('accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('storefront_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('parent_reseller_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('phone', sa.String(length=40), nullable=False),
    sa.Column('preferred_language', sa.String(length=8), nullable=False),
    sa.Column('customer_group', sa.String(length=40), nullable=False),
    sa.Column('price_group', sa.String(length=40), nullable=False),
    sa.Column('rep_code', sa.String(length=40), nullable=False),
    sa.Column('payment_method', sa.String(length=20), nullable=False),
    sa.Column('payment_terms', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('prorate_billing', sa.Boolean(), nullable=False),
    sa.Column('billing_day', sa.Integer(), nullable=False),
    sa.Column('partial_charges_invoicing', sa.String(length=20), nullable=False),
    sa.Column('auto_invoice_email', sa.Boolean(), nullable=False),
    sa.Column('order_approval_required', sa.Boolean(), nullable=False),
    sa.Column('may_become_reseller', sa.Boolean(), nullable=False),
    sa.Column('erp_code', sa.String(length=40), nullable=True),
    sa.Column('credit_limit', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('created_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['parent_reseller_id'], ['accounts.id'], name=op.f('fk_accounts_parent_reseller_id_accounts')),
    sa.ForeignKeyConstraint(['storefront_id'], ['storefronts.id'], name=op.f('fk_accounts_storefront_id_storefronts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('erp_code', name=op.f('uq_accounts_erp_code')),
    sa.UniqueConstraint('number', name=op.f('uq_accounts_number'))
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accounts_customer_group'), ['customer_group'], unique=False)
        batch_op.create_index('ix_accounts_name_id', ['name', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_accounts_parent_reseller_id'), ['parent_reseller_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_accounts_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_accounts_storefront_id'), ['storefront_id'], unique=False)

    # storefronts and accounts point at each other: the storefront's reseller link is added once both exist
    with op.batch_alter_table('storefronts', schema=None) as batch_op:
        batch_op.create_foreign_key(op.f('fk_storefronts_reseller_account_id_accounts'), 'accounts',
                                    ['reseller_account_id'], ['id'])
    if op.get_bind().dialect.name == 'postgresql':
        # trigram index: partial, case-insensitive search over name, number, e-mails, phone and city
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        op.execute('CREATE INDEX ix_accounts_search_text_trgm ON accounts USING gin (search_text gin_trgm_ops)')

    op.create_table('addresses',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('label', sa.String(length=80), nullable=False),
    sa.Column('line1', sa.String(length=200), nullable=False),
    sa.Column('line2', sa.String(length=200), nullable=False),
    sa.Column('city', sa.String(length=120), nullable=False),
    sa.Column('region', sa.String(length=10), nullable=False),
    sa.Column('postcode', sa.String(length=20), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('is_billing', sa.Boolean(), nullable=False),
    sa.Column('is_shipping', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_addresses_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_addresses'))
    )
    with op.batch_alter_table('addresses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_addresses_account_id'), ['account_id'], unique=False)

    op.create_table('contacts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('storefront_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('phone', sa.String(length=40), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('date_format', sa.String(length=12), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=True),
    sa.Column('email_verified_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_sign_in_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_seen_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('erp_contact_code', sa.String(length=40), nullable=True),
    sa.Column('erp_checked_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('created_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_contacts_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['storefront_id'], ['storefronts.id'], name=op.f('fk_contacts_storefront_id_storefronts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts')),
    sa.UniqueConstraint('account_id', 'storefront_id', 'email', name=op.f('uq_contacts_account_id_storefront_id_email'))
    )
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contacts_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_contacts_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_contacts_storefront_id'), ['storefront_id'], unique=False)

    op.create_table('custom_attribute_values',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('definition_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_custom_attribute_values_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['definition_id'], ['custom_attribute_definitions.id'], name=op.f('fk_custom_attribute_values_definition_id_custom_attribute_definitions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_custom_attribute_values')),
    sa.UniqueConstraint('account_id', 'definition_id', name=op.f('uq_custom_attribute_values_account_id_definition_id'))
    )
    with op.batch_alter_table('custom_attribute_values', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_custom_attribute_values_account_id'), ['account_id'], unique=False)

    op.create_table('invoices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('total', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_invoices_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('account_id', 'number', name=op.f('uq_invoices_account_id_number'))
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoices_account_id'), ['account_id'], unique=False)

    op.create_table('staff_users',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('reseller_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('last_sign_in_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('created_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['reseller_account_id'], ['accounts.id'], name=op.f('fk_staff_users_reseller_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_users')),
    sa.UniqueConstraint('email', name=op.f('uq_staff_users_email'))
    )
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_users_reseller_account_id'), ['reseller_account_id'], unique=False)

    op.create_table('auth_sessions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_digest', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('staff_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_auth_sessions_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_users.id'], name=op.f('fk_auth_sessions_staff_user_id_staff_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_sessions')),
    sa.UniqueConstraint('token_digest', name=op.f('uq_auth_sessions_token_digest'))
    )
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auth_sessions_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_auth_sessions_staff_user_id'), ['staff_user_id'], unique=False)

    op.create_table('single_use_tokens',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_digest', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=30), nullable=False),
    sa.Column('contact_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('staff_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('used_at', accountdesk.core.db.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_single_use_tokens_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_users.id'], name=op.f('fk_single_use_tokens_staff_user_id_staff_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_single_use_tokens')),
    sa.UniqueConstraint('token_digest', name=op.f('uq_single_use_tokens_token_digest'))
    )
    with op.batch_alter_table('single_use_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_single_use_tokens_contact_id'), ['contact_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('storefronts', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_storefronts_reseller_account_id_accounts'), type_='foreignkey')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_accounts_search_text_trgm')
    with op.batch_alter_table('single_use_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_single_use_tokens_contact_id'))

    op.drop_table('single_use_tokens')
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auth_sessions_staff_user_id'))
        batch_op.drop_index(batch_op.f('ix_auth_sessions_contact_id'))

    op.drop_table('auth_sessions')
    with op.batch_alter_table('staff_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_users_reseller_account_id'))

    op.drop_table('staff_users')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoices_account_id'))

    op.drop_table('invoices')
    with op.batch_alter_table('custom_attribute_values', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_custom_attribute_values_account_id'))

    op.drop_table('custom_attribute_values')
    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contacts_storefront_id'))
        batch_op.drop_index(batch_op.f('ix_contacts_email'))
        batch_op.drop_index(batch_op.f('ix_contacts_account_id'))

    op.drop_table('contacts')
    with op.batch_alter_table('addresses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_addresses_account_id'))

    op.drop_table('addresses')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_storefront_id'))
        batch_op.drop_index(batch_op.f('ix_accounts_status'))
        batch_op.drop_index(batch_op.f('ix_accounts_parent_reseller_id'))
        batch_op.drop_index('ix_accounts_name_id')
        batch_op.drop_index(batch_op.f('ix_accounts_customer_group'))

    op.drop_table('accounts')
    with op.batch_alter_table('storefronts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_storefronts_reseller_account_id'))

    op.drop_table('storefronts')
    with op.batch_alter_table('rate_limit_hits', schema=None) as batch_op:
        batch_op.drop_index('ix_rate_limit_hits_key_hit_at')

    op.drop_table('rate_limit_hits')
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_messages_status_next_attempt_at')

    op.drop_table('outbox_messages')
    op.drop_table('number_sequences')
    op.drop_table('custom_attribute_definitions')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_account_id'))

    op.drop_table('audit_events')
