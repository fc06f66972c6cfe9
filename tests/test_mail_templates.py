"""Every e-mail template renders in every language, escapes HTML, and keeps its links (no database needed)."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest
from jinja2 import Environment, FileSystemLoader, meta
from markupsafe import escape

from accountdesk.core import i18n
from accountdesk.mail.service import LANGUAGES, TEMPLATES, render

COMMON = ("name", "storefront_name", "account_name")

# Each template's extra context variables; the values ending in "link" are URLs that must reach both parts.
EXTRA: dict[str, tuple[str, ...]] = {
    "password_reset": ("link", "expires_minutes"),
    "password_changed": ("changed_at", "reset_link"),
    "activation": ("link", "expires_hours", "invited_by", "sign_in_link"),
    "email_verification": ("link", "expires_hours"),
    "registration_received": (),
    "new_account_request": ("registrant_name", "registrant_email", "company_name", "account_number", "review_link"),
    "registration_approved": ("sign_in_link",),
    "registration_rejected": ("reason",),
    "registration_attempt_existing": ("accounts", "sign_in_link", "reset_link"),
    "contact_request_received": (),
    "new_contact_request": ("registrant_name", "registrant_email", "account_number", "review_link"),
    "contact_request_approved": ("sign_in_link",),
    "contact_request_rejected": ("reason",),
    "password_set_by_staff": ("changed_at", "reset_link"),
    "reverification": ("link", "expires_hours", "inactive_days"),
    "storefront_user_deactivated": (),
    "instant_registration": ("link", "expires_hours"),
    "staff_invitation": ("role", "link", "expires_hours", "invited_by", "sign_in_link"),
    "sign_in_attack": ("site_name", "attempts", "reset_link"),
    "domain_join_request": ("registrant_name", "registrant_email", "review_link"),
    "webhook_endpoint_disabled": ("url", "failing_since", "console_link"),
}

TEAM_NOTICES = ("new_account_request", "new_contact_request")  # to the storefront's staff addresses

EVIL_NAME = "<script>alert('x')</script> & Co"
VALUES: dict[str, Any] = {
    "name": EVIL_NAME,
    "storefront_name": "Acme Shop",
    "account_name": "Dupont & Fils",
    "link": "https://shop.example.com/token?t=abc123&kind=main",
    "reset_link": "https://shop.example.com/password/forgot?email=a%40example.com&from=mail",
    "sign_in_link": "https://shop.example.com/sign-in?next=%2F&from=mail",
    "review_link": "https://admin.example.com/requests/42?tab=review&from=mail",
    "expires_minutes": 30,
    "expires_hours": 48,
    "inactive_days": 180,
    "changed_at": "2024-05-01 10:00 UTC",
    "invited_by": "Marie Curie",
    "registrant_name": "Jean Dupont",
    "registrant_email": "jean@example.com",
    "company_name": "Dupont & Fils SARL",
    "account_number": "C-10042",
    "reason": "We only sell to registered businesses.",
    "role": "reseller_admin",
    "site_name": "Acme Shop",
    "attempts": 20,
    "url": "https://hooks.example.com/accountdesk",
    "failing_since": "2024-05-01 10:00 UTC",
    "console_link": "https://admin.example.com/console/webhooks/3?from=mail",
    "accounts": [{"name": "Dupont & Fils", "number": "W000123", "state": "active"},
                 {"name": "<b>Dupont</b> Export", "number": "W000124", "state": "rejected"}],
}

CASES = [(name, lang) for name in sorted(EXTRA) for lang in LANGUAGES]


def _context(name: str, **overrides: Any) -> dict[str, Any]:
    context = {key: VALUES[key] for key in (*COMMON, *EXTRA[name])}
    context.update(overrides)
    return context


def _render(name: str, lang: str, **overrides: Any) -> EmailMessage:
    payload = {"template": name, "language": lang, "to": ["a@example.com"], "context": _context(name, **overrides)}
    return render(payload, "Shop <shop@example.com>")


def _parts(message: EmailMessage) -> tuple[str, str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(message["Subject"]), text.get_content(), html.get_content()


def test_one_template_per_mail_for_every_language() -> None:
    """The languages differ by catalogue, not by copies of the template."""
    assert {path.stem for path in TEMPLATES.glob("*.j2")} == set(EXTRA)
    assert not [path for path in TEMPLATES.iterdir() if path.is_dir()]


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_template_uses_only_its_variables_and_all_blocks(name: str) -> None:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)))
    i18n.install(env)
    source = env.loader.get_source(env, f"{name}.j2")[0]  # type: ignore[union-attr]
    used = meta.find_undeclared_variables(env.parse(source)) - {"_", "gettext", "ngettext"}
    assert used <= set(COMMON) | set(EXTRA[name])
    assert set(env.get_template(f"{name}.j2").blocks) == {"subject", "text", "html"}


@pytest.mark.parametrize(("name", "lang"), CASES)
def test_template_renders(name: str, lang: str) -> None:
    message = _render(name, lang)
    subject, text, html = _parts(message)

    assert subject.strip()
    assert "\n" not in subject and "\r" not in subject

    for key in EXTRA[name]:
        if key.endswith("link"):
            assert VALUES[key] in text, key
            assert f'href="{escape(VALUES[key])}"' in html, key

    # The recipient's name is data: escaped in HTML, verbatim in plain text. A staff notice greets the storefront's
    # team in the template's words instead.
    if name in TEAM_NOTICES:
        assert EVIL_NAME not in text and VALUES["storefront_name"] in text.splitlines()[0]
    else:
        assert EVIL_NAME in text
        assert escape(EVIL_NAME) in html
    assert "<script>" not in html
    assert "{{" not in text + html and "{%" not in text + html

    if lang != "en":
        en_subject, en_text, en_html = _parts(_render(name, "en"))
        assert subject != en_subject
        assert text != en_text
        assert html != en_html


@pytest.mark.parametrize("lang", LANGUAGES)
def test_optional_values_may_be_empty(lang: str) -> None:
    _, text, html = _parts(_render("activation", lang, invited_by=""))
    assert VALUES["invited_by"] not in text and "  " not in text
    _, text, html = _parts(_render("activation", lang))
    assert VALUES["invited_by"] in text and VALUES["invited_by"] in html

    _, text, html = _parts(_render("registration_rejected", lang, reason=""))
    assert "\n\n\n" not in text
    _, text, html = _parts(_render("registration_rejected", lang))
    assert VALUES["reason"] in text and escape(VALUES["reason"]) in html

    _, text, _ = _parts(_render("new_account_request", lang, account_number=""))
    assert "\n\n\n" not in text
    _, text, html = _parts(_render("new_account_request", lang))
    assert VALUES["account_number"] in text and VALUES["registrant_email"] in html

    _, text, html = _parts(_render("sign_in_attack", lang, reset_link=""))  # staff users: no reset link
    assert "http" not in text and "href" not in html and "\n\n\n" not in text


def test_staff_mails_name_the_team_and_the_back_office_in_the_readers_words() -> None:
    """Nothing of a staff mail is English made in Python: the greeting of a staff notice and the back office's name
    in a sign-in warning are the template's, in the reader's language."""
    subject, text, html = _parts(_render("sign_in_attack", "de", site_name="", reset_link=""))
    assert subject == "Jemand versucht, sich mit Ihrer E-Mail-Adresse bei dem accountdesk-Backoffice anzumelden"
    assert "accountdesk-Backoffice" in text and "accountdesk-Backoffice" in html and "back office" not in text
    assert "le back-office accountdesk" in _parts(_render("sign_in_attack", "fr", site_name=""))[0]
    for name in TEAM_NOTICES:
        _, text, html = _parts(_render(name, "fr"))
        assert text.startswith("Bonjour l'équipe Acme Shop,") and "team" not in text
        assert "Bonjour l&#39;équipe Acme Shop," in html or "Bonjour l'équipe Acme Shop," in html


def test_unknown_language_falls_back_to_english() -> None:
    subject, _, _ = _parts(_render("password_reset", "es"))
    assert subject == _parts(_render("password_reset", "en"))[0]
