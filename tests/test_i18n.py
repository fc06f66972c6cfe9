"""Languages: every string of the sources is in every catalogue and translated, no template shows text outside the
translation tags, Babel formats, and the language a page or an API answer speaks (contact, visitor, staff user)."""

from __future__ import annotations

import csv
import io
import re
import shlex
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_keywords, parse_mapping_cfg
from babel.messages.pofile import read_po
from sqlalchemy import select, update

from accountdesk.core import i18n
from accountdesk.core.languages import LANGUAGES
from accountdesk.core.models import AuditEvent
from accountdesk.staff.models import StaffUser
from tests import factories as f
from tests.mailbox import deliver_and_read
from tests.page_world import storefront_sign_in
from tests.reseller_world import csrf_of, customer, world
from tests.test_console_pages import post, sign_in

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "src"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _keywords() -> dict:
    """pybabel's keywords plus the Makefile's I18N_KEYWORDS: the test extracts exactly what `make i18n-extract`
    does."""
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    line = re.search(r"^I18N_KEYWORDS := (.*)$", makefile, re.M)
    assert line, "Makefile has no I18N_KEYWORDS"
    words = shlex.split(line.group(1))
    return {**DEFAULT_KEYWORDS, **parse_keywords([w for w in words if w != "-k"])}


@pytest.fixture(scope="module")
def source_messages() -> set[str]:
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            SOURCES, method_map, options_map, keywords=_keywords(), strip_comment_tags=True):
        found.add(_singular(message))
    assert len(found) > 500
    return found


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_catalogue_has_every_string_translated(language: str, source_messages: set[str]) -> None:
    path = i18n.catalogue_path(language)
    assert path.exists(), f"no catalogue {path}: `make i18n-update` after adding it (README, Languages)"
    with path.open("rb") as po:
        catalogue = read_po(po, locale=language)
    entries = {_singular(m.id): m for m in catalogue if m.id}
    missing = sorted(source_messages - set(entries))
    assert not missing, f"{language}: strings missing, run `make i18n-extract i18n-update`: {missing[:10]}"
    stale = sorted(set(entries) - source_messages)
    assert not stale, f"{language}: strings no source uses, run `make i18n-extract i18n-update`: {stale[:10]}"
    fuzzy = sorted(m.id for m in entries.values() if m.fuzzy)
    assert not fuzzy, f"{language}: fuzzy entries (check and remove the flag): {fuzzy[:10]}"
    if language == "en":  # the source language: msgids are the English text
        return
    untranslated = sorted(key for key, m in entries.items() if not all(_forms(m.string)))
    assert not untranslated, f"{language}: strings to translate: {untranslated[:10]}"
    for key, entry in entries.items():
        wanted = set(PLACEHOLDER.findall(" ".join(_forms(entry.id))))
        for form in _forms(entry.string):
            assert set(PLACEHOLDER.findall(form)) == wanted, (language, key, form)


def _forms(text: str | tuple[str, ...]) -> tuple[str, ...]:
    """The text, or each plural form."""
    return text if isinstance(text, tuple) else (text,)


def _singular(msgid: str | tuple[str, ...]) -> str:
    return _forms(msgid)[0]


# --- templates ----------------------------------------------------------------------------------------------------

TRANS_BLOCK = re.compile(r"\{%-?\s*trans\b.*?%\}.*?\{%-?\s*endtrans\s*-?%\}", re.S)
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
WORD = re.compile(r"[^\W\d_]{2,}")
SHOWN_ATTRIBUTES = {"placeholder", "title", "aria-label", "alt"}
# a label or hint given to a form macro as a bare string: field(form, "name", "Label") / hint="…" / blank="…"
MACRO_LITERAL = re.compile(r"""\b(?:field|select|checkbox|label_for)\(\s*\w+\s*,\s*[^,()]+,\s*(["'][^"']*["'])"""
                           r"""|\b(?:hint|blank)=(["'][^"']*["'])""")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.shown: list[str] = []

    def handle_data(self, data: str) -> None:
        self.shown.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.shown += [value or "" for name, value in attrs if name in SHOWN_ATTRIBUTES]
        if tag == "input" and values.get("type") in ("submit", "button"):
            self.shown.append(values.get("value") or "")


def untranslated(source: str) -> list[str]:
    """Text a reader would see that is not inside {% trans %}…{% endtrans %} or an expression such as _('…'):
    HTML text and shown attributes with a word of two letters or more, and bare strings given to the form macros.
    Whitespace, punctuation, numbers and {{ … }} expressions are not text."""
    found = [m.group(1) or m.group(2) for expression in re.findall(r"\{\{.*?\}\}|\{%.*?%\}", source, re.S)
             for m in MACRO_LITERAL.finditer(expression) if WORD.search(m.group(1) or m.group(2))]
    parser = _Text()
    parser.feed(JINJA.sub(" ", TRANS_BLOCK.sub(" ", source)))
    parser.close()
    return found + [" ".join(text.split()) for text in parser.shown if WORD.search(text)]


def template_files() -> list[Path]:
    package = SOURCES / "accountdesk"
    return sorted([*package.glob("*/templates/**/*.html"), *package.glob("*/templates/**/*.j2")])


def test_the_scan_catches_bare_text_and_lets_wrapped_text_pass() -> None:
    wrapped = """<h1>{% trans %}Your account{% endtrans %}</h1> <p>{{ account.name }} · 12, {{ n }}%</p>
        <input placeholder="{{ _('Search') }}" type="search"> {{ field(form, "name", _("Name"), hint=_("Short")) }}
        <button type="submit">{% trans name=user.name %}Save {{ name }}{% endtrans %}</button>"""
    assert untranslated(wrapped) == []
    assert untranslated(wrapped + "<p>Please call us on Monday.</p>") == ["Please call us on Monday."]
    assert untranslated('<input placeholder="Search by name">') == ["Search by name"]
    assert untranslated('{{ field(form, "name", "Name") }}') == ['"Name"']
    assert untranslated('{{ field(form, "name", _("Name"), hint="Letters only") }}') == ['"Letters only"']
    assert untranslated("{% block subject %}Welcome to the shop{% endblock %}") == ["Welcome to the shop"]


def test_templates_have_no_untranslated_text() -> None:
    files = template_files()
    assert len(files) > 70
    problems = {str(path.relative_to(SOURCES)): texts for path in files if (texts := untranslated(path.read_text()))}
    assert not problems, ("wrap these in {% trans %}…{% endtrans %} or _('…'), then `make i18n-extract i18n-update` "
                          f"and translate them (README, Languages): {problems}")


# --- formats ------------------------------------------------------------------------------------------------------

def test_money_numbers_dates_and_phones_as_each_language_writes_them() -> None:
    assert i18n.format_money("1234.56", "EUR", "fr") == "1\u202f234,56\xa0€"
    assert i18n.format_money("1234.56", "EUR", "de") == "1.234,56\xa0€"
    assert i18n.format_money("1234.56", "GBP", "en") == "£1,234.56"
    assert i18n.format_number("99.9", 2, "de") == "99,90"
    day = date(2026, 3, 7)
    assert i18n.format_day(day, "DD/MM/YYYY", "fr") == "07/03/2026"
    assert i18n.format_day(day, "YYYY-MM-DD", "de") == "2026-03-07"
    assert i18n.format_day(day, "DD.MM.YYYY", "en") == "07.03.2026"
    assert i18n.format_day(day, None, "de") == "07.03.2026"
    assert i18n.format_month(day, "fr") == "mars 2026"
    assert i18n.format_phone("+441134960000") == "+44 113 496 0000"
    assert i18n.format_phone("+33142685300") == "+33 1 42 68 53 00"
    assert i18n.format_phone("not a phone") == "not a phone"


def test_accept_language_picks_the_best_language_offered() -> None:
    assert i18n.negotiate("fr-CH, fr;q=0.9, en;q=0.8") == "fr"
    assert i18n.negotiate("es, de;q=0.5, fr;q=0.4") == "de"
    assert i18n.negotiate("es, it") is None
    assert i18n.negotiate("de;q=0, en;q=0.1") == "en"
    assert i18n.negotiate("", ("en",)) is None


def test_lazy_messages_follow_the_language_of_the_moment() -> None:
    message = i18n.lazy_gettext("Use at least %(count)s characters.", count=12)
    with i18n.speaking("de"):
        assert str(message) == "Verwenden Sie mindestens 12 Zeichen."
    with i18n.speaking("fr"):
        assert str(message) == "Utilisez au moins 12 caractères."
    assert str(message) == "Use at least 12 characters."


# --- what a request is answered in ---------------------------------------------------------------------------------

def test_api_errors_follow_accept_language_and_keep_their_code(db, client):
    english = client.get("/api/v1/accounts")
    french = client.get("/api/v1/accounts", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    german = client.get("/api/v1/accounts", headers={"Accept-Language": "de"})
    assert english.status_code == french.status_code == german.status_code == 401
    assert {english.json()["error"]["code"], french.json()["error"]["code"], german.json()["error"]["code"]} == {
        "not_authenticated"}
    assert english.json()["error"]["message"] == "Send a staff access token: Authorization: Bearer <token>."
    assert french.json()["error"]["message"] == "Envoyez un jeton d'accès de l'équipe : Authorization: Bearer <token>."
    assert german.headers["content-language"] == "de"

    headers = {**f.token(client, f.staff(db)), "Accept-Language": "de"}
    refused = client.post("/api/v1/accounts", json={"name": ""}, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "validation_failed"
    assert refused.json()["error"]["message"] == "Einige Felder müssen geprüft werden."


def _lang(html: str) -> str:
    return re.search(r'<html lang="(\w+)">', html).group(1)


def test_storefront_pages_speak_the_visitor_or_storefront_language_and_the_switcher_remembers(db, client):
    store = f.storefront(db, default_language="de")
    sign_in_path = f"/s/{store.slug}/sign-in"
    german = client.get(sign_in_path)
    assert _lang(german.text) == "de" and "Passwort vergessen?" in german.text
    assert german.headers["content-language"] == "de"
    french = client.get(sign_in_path, headers={"Accept-Language": "fr"})
    assert _lang(french.text) == "fr" and "Mot de passe oublié ?" in french.text
    assert f'href="/s/{store.slug}/language/en?next=/s/{store.slug}/sign-in"' in french.text

    switched = client.get(f"/s/{store.slug}/language/en", params={"next": sign_in_path}, follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == sign_in_path
    english = client.get(sign_in_path, headers={"Accept-Language": "fr"})
    assert _lang(english.text) == "en" and "Forgot your password?" in english.text
    assert 'aria-current="true">English' in english.text

    elsewhere = client.get(f"/s/{store.slug}/language/fr", params={"next": "https://evil.example/"},
                           follow_redirects=False)
    assert elsewhere.headers["location"] == f"/s/{store.slug}"


def _switcher(html: str) -> list[str]:
    """The languages the storefront's language switcher lists (its links and the current one)."""
    nav = re.search(r'data-testid="language-switcher">(.*?)</nav>', html, re.S)
    return re.findall(r'\slang="(\w+)"', nav.group(1)) if nav else []


def test_storefront_pages_speak_only_the_languages_the_storefront_offers(db, client, mail_dir):
    store = f.storefront(db, name="Nord Handel", languages=["en", "de"])
    sign_in_path = f"/s/{store.slug}/sign-in"
    french_only = client.get(sign_in_path, headers={"Accept-Language": "fr"})
    assert _lang(french_only.text) == "en" and "Forgot your password?" in french_only.text  # the default language
    assert _switcher(french_only.text) == ["en", "de"]
    french_then_german = client.get(sign_in_path, headers={"Accept-Language": "fr-FR, fr;q=0.9, de;q=0.5"})
    assert _lang(french_then_german.text) == "de" and "Passwort vergessen?" in french_then_german.text
    assert _switcher(french_then_german.text) == ["en", "de"]
    assert f"/s/{store.slug}/language/fr" not in french_then_german.text

    client.get(f"/s/{store.slug}/language/fr", params={"next": sign_in_path})  # not offered: no choice kept
    assert _lang(client.get(sign_in_path, headers={"Accept-Language": "fr"}).text) == "en"
    client.get(f"/s/{store.slug}/language/de", params={"next": sign_in_path})
    assert _lang(client.get(sign_in_path, headers={"Accept-Language": "fr"}).text) == "de"
    client.cookies.clear()

    # a contact whose language the storefront does not offer still reads their pages and e-mails in it
    account = f.account(db, storefront_id=store.id, name="Maison Dupont")
    f.contact(db, account, store, email="claire@example.com", language="fr")
    form = client.get(f"/s/{store.slug}/password/forgot")
    client.post(f"/s/{store.slug}/password/forgot", data={"csrf_token": csrf_of(form.text),
                                                          "email": "claire@example.com"})
    [reset] = deliver_and_read(db, mail_dir)
    assert reset["Subject"] == "Réinitialisez votre mot de passe pour Nord Handel"
    storefront_sign_in(client, store, "claire@example.com")
    home = client.get(f"/s/{store.slug}", headers={"Accept-Language": "de"})
    assert _lang(home.text) == "fr" and "Connecté en tant que" in home.text
    assert _switcher(home.text) == ["en", "de"]  # the switcher still offers only the storefront's languages


def test_signed_in_contact_sees_pages_in_their_language_and_date_format(db, client):
    store = f.storefront(db)
    account = f.account(db, storefront_id=store.id, name="Maison Dupont")
    f.contact(db, account, store, email="claire@example.com", language="fr", date_format="DD/MM/YYYY")
    storefront_sign_in(client, store, "claire@example.com")
    home = client.get(f"/s/{store.slug}", headers={"Accept-Language": "de"})
    assert _lang(home.text) == "fr" and "Connecté en tant que" in home.text


def test_console_speaks_the_staff_users_language_chosen_on_my_account(db, client):
    staff = f.staff(db, "admin")
    sign_in(client, staff)
    assert _lang(client.get("/console/accounts", headers={"Accept-Language": "fr"}).text) == "en"
    refused = post(client, "/console/account/language", {"language": "xx"})
    assert refused.status_code == 422
    saved = post(client, "/console/account/language", {"language": "de"})
    assert saved.status_code == 303
    page = client.get("/console/account")
    assert _lang(page.text) == "de" and "Ihre Sprache wurde gespeichert." in page.text
    accounts = client.get("/console/accounts")
    assert "<h1>Kunden</h1>" in accounts.text and "Kunden anlegen" in accounts.text
    with db.transaction() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.subject_type == "staff_user",
                                                         AuditEvent.subject_id == staff.id)
                                .order_by(AuditEvent.id.desc())).first()
        assert event.changes == {"language": ["en", "de"]}


def test_console_exports_title_their_columns_in_the_staff_users_language(db, client):
    w = world(db)
    customer(db, w, name="Radhaus Müller")
    admin = f.staff(db, "admin")
    with db.transaction() as session:
        session.execute(update(StaffUser).where(StaffUser.id == admin.id).values(language="de"))
    sign_in(client, admin)
    response = client.get(f"/console/resellers/{w.reseller.id}/customers/export", params={"format": "csv"})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["Nummer", "Name", "Telefon", "Ort", "E-Mail", "Monatlicher Umsatz", "Shop-Zugang"]
    assert rows[1][1] == "Radhaus Müller" and rows[1][6] == "Nein"


# --- flash messages ------------------------------------------------------------------------------------------------

def test_flash_messages_with_names_are_shown_in_the_readers_language(db, client):
    """A flash message travels as its catalogue words and values: the next page puts the values into the reader's
    translation (no English text with a name in it that no catalogue can hold)."""
    store = f.storefront(db)
    account = f.account(db, storefront_id=store.id)
    staff = f.staff(db, "csr")
    with db.transaction() as session:
        session.execute(update(StaffUser).where(StaffUser.id == staff.id).values(language="de"))
    sign_in(client, staff)
    added = post(client, f"/console/accounts/{account.id}/contacts", {
        "first_name": "Ada", "last_name": "Lovelace", "email": "ada@nordwind.example", "phone": "+49 30 901820",
        "language": "de", "date_format": "DD.MM.YYYY", "role": "buyer"})
    assert added.status_code == 303
    german = client.get(added.headers["location"])
    assert "Kontakt Ada Lovelace hinzugefügt." in german.text and "Contact Ada Lovelace added." not in german.text
    assert "Kontakt Ada Lovelace hinzugefügt." not in client.get(added.headers["location"]).text  # shown once


def test_a_flash_cookie_is_only_ever_text(db, client):
    """The flash cookie comes back from the browser: values go in by name only, never as % formats, and markup is
    escaped like any other text."""
    forged = '{"text":"%(a)999999999s %s %(b)s","values":{"b":"<script>alert(1)</script>"}}'
    client.cookies.set("accountdesk_flash", quote(forged))
    page = client.get(f"/s/{f.storefront(db).slug}/sign-in")
    assert page.status_code == 200
    assert "%(a)999999999s %s &lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert i18n.shown({"text": "Saved.", "values": {}}) == "Saved."
    with i18n.speaking("fr"):
        assert i18n.shown(i18n.as_data(i18n._l("Contact %(name)s added.", name="Ada"))) == "Contact Ada ajouté."
