"""OpenID Connect provider: signing keys, clients per storefront, authorization codes, tokens, subjects

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'oidc_signing_keys',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('kid', sa.String(64), nullable=False, unique=True),
        sa.Column('state', sa.String(10), nullable=False, index=True),
        sa.Column('public_jwk', sa.JSON(), nullable=False),
        sa.Column('private_sealed', sa.Text(), nullable=False),
        sa.Column('created_at', When, nullable=False),
        sa.Column('retired_at', When),
    )
    op.create_table(
        'oidc_clients',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('client_id', sa.String(64), nullable=False, unique=True),
        sa.Column('storefront_id', BigId, sa.ForeignKey('storefronts.id', ondelete='CASCADE'),
                  nullable=False, index=True),
        sa.Column('name', sa.String(120), nullable=False),
        sa.Column('kind', sa.String(12), nullable=False),
        sa.Column('secret_digest', sa.String(64)),
        sa.Column('redirect_uris', sa.JSON(), nullable=False),
        sa.Column('post_logout_redirect_uris', sa.JSON(), nullable=False),
        sa.Column('scopes', sa.JSON(), nullable=False),
        sa.Column('backchannel_logout_uri', sa.String(500)),
        sa.Column('created_at', When, nullable=False),
    )
    op.create_table(
        'oidc_authorization_codes',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('code_digest', sa.String(64), nullable=False, unique=True),
        sa.Column('client_id', BigId, sa.ForeignKey('oidc_clients.id', ondelete='CASCADE'), nullable=False,
                  index=True),
        sa.Column('contact_id', BigId, sa.ForeignKey('contacts.id', ondelete='CASCADE'), nullable=False,
                  index=True),
        sa.Column('auth_session_id', BigId),
        sa.Column('redirect_uri', sa.String(500), nullable=False),
        sa.Column('scope', sa.String(500), nullable=False),
        sa.Column('nonce', sa.String(255)),
        sa.Column('code_challenge', sa.String(128)),
        sa.Column('code_challenge_method', sa.String(10)),
        sa.Column('auth_time', When, nullable=False),
        sa.Column('expires_at', When, nullable=False),
        sa.Column('used_at', When),
        sa.Column('created_at', When, nullable=False),
    )
    op.create_table(
        'oidc_tokens',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('client_id', BigId, sa.ForeignKey('oidc_clients.id', ondelete='CASCADE'), nullable=False,
                  index=True),
        sa.Column('storefront_id', BigId, nullable=False),
        sa.Column('contact_id', BigId, sa.ForeignKey('contacts.id', ondelete='CASCADE'), index=True),
        sa.Column('auth_session_id', BigId),
        sa.Column('code_id', BigId, index=True),
        sa.Column('family', sa.String(64), nullable=False, index=True),
        sa.Column('scope', sa.String(500), nullable=False),
        sa.Column('access_digest', sa.String(64), nullable=False, unique=True),
        sa.Column('refresh_digest', sa.String(64), unique=True),
        sa.Column('access_expires_at', When, nullable=False),
        sa.Column('refresh_expires_at', When),
        sa.Column('auth_time', When),
        sa.Column('rotated_at', When),
        sa.Column('revoked_at', When),
        sa.Column('created_at', When, nullable=False),
    )
    op.create_index('ix_oidc_tokens_contact_id_revoked_at', 'oidc_tokens', ['contact_id', 'revoked_at'])
    op.create_table(
        'oidc_subjects',
        sa.Column('contact_id', BigId, sa.ForeignKey('contacts.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('subject', sa.String(64), nullable=False, unique=True),
    )


def downgrade() -> None:
    for table in ('oidc_subjects', 'oidc_tokens', 'oidc_authorization_codes', 'oidc_clients', 'oidc_signing_keys'):
        op.drop_table(table)
