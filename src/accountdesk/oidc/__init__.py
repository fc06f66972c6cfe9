"""accountdesk as each storefront's OpenID Connect provider, and the storefront backends' own credentials."""

from sqlalchemy.orm import Session

from accountdesk.core import sessions


def _contact_signed_out(session: Session, contact_id: int, keep_id: int | None) -> None:
    from accountdesk.oidc.logout import end_contact_sessions

    end_contact_sessions(session, contact_id, keep_auth_session_id=keep_id)


if _contact_signed_out not in sessions.CONTACT_SIGN_OUT_HOOKS:
    sessions.CONTACT_SIGN_OUT_HOOKS.append(_contact_signed_out)
