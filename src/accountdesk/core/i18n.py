"""Languages of the product: one gettext catalogue per language (locale/<code>/LC_MESSAGES/messages.po, kept with
Babel, see README "Languages"), the language of the moment, lazy strings for messages made before the language is
known (API errors), and the Babel formats of dates, money and numbers, and phones in international form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any

import phonenumbers
from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_date
from babel.dates import format_datetime as babel_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import LazyProxy, Translations

from accountdesk.core.cookies import host_cookie
from accountdesk.core.languages import DATE_FORMATS, LANGUAGES

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"
DEFAULT_LANGUAGE = "en"
LANGUAGE_COOKIE = "accountdesk_language"
# DateFormat choices as Babel (CLDR) patterns
DATE_PATTERNS = {"DD/MM/YYYY": "dd/MM/yyyy", "MM/DD/YYYY": "MM/dd/yyyy", "YYYY-MM-DD": "yyyy-MM-dd",
                 "DD.MM.YYYY": "dd.MM.yyyy"}
assert set(DATE_PATTERNS) == set(DATE_FORMATS)

_language: ContextVar[str] = ContextVar("accountdesk_language", default=DEFAULT_LANGUAGE)
_date_format: ContextVar[str | None] = ContextVar("accountdesk_date_format", default=None)


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache
def translations(language: str) -> Translations:
    """The language's catalogue, compiled from its .po file in memory (no .mo to build or keep up to date); fuzzy
    entries are left out, so a string whose translation is unsure shows in English."""
    path = catalogue_path(language)
    if not path.exists():
        return Translations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def supported(language: str | None) -> str | None:
    """The language code when the product speaks it, else None."""
    code = (language or "").strip().lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGES else None


def current_language() -> str:
    return _language.get()


@contextmanager
def speaking(language: str | None, date_format: str | None = None) -> Iterator[str]:
    """Run a block (a page's or an e-mail's rendering, an error's message) in a language and date format."""
    code = supported(language) or DEFAULT_LANGUAGE
    token, format_token = _language.set(code), _date_format.set(date_format)
    try:
        yield code
    finally:
        _language.reset(token)
        _date_format.reset(format_token)


def gettext(message: str, **variables: Any) -> str:
    text = translations(current_language()).ugettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    text = translations(current_language()).ungettext(singular, plural, n)
    return text % {"num": n, **variables}


class LazyText(LazyProxy):
    """A catalogue message and its named values, translated when it is shown. It also keeps its words apart
    (`msgid`, `values`), so that it can be stored as data (`as_data`: a flash message, an import report) and still
    be shown later in the language of whoever reads it then (`from_data`)."""

    __slots__ = ("msgid", "values")

    def __init__(self, msgid: str, **values: Any) -> None:
        super().__init__(gettext, msgid, enable_cache=False, **values)
        object.__setattr__(self, "msgid", msgid)
        object.__setattr__(self, "values", values)


def lazy_gettext(message: str, **variables: Any) -> LazyText:
    """A message translated when it is shown, in the language of that moment (an error raised deep in a service
    is read out in the request's language by the error handler)."""
    return LazyText(message, **variables)


_ = gettext
_l = lazy_gettext


def translate(message: Any) -> str:
    """A message as text in the current language: a lazy string evaluates itself; a plain string is looked up in
    the catalogue (messages written without `_l`, e.g. pydantic's own, stay as they are when not found)."""
    if isinstance(message, LazyProxy):
        return str(message)
    return gettext(message) if isinstance(message, str) and message else str(message)


def negotiate(accept_language: str | None, offered: Any = LANGUAGES) -> str | None:
    """The best of `offered` for an Accept-Language header (quality order), or None."""
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        code = supported(tag)
        if code and code in offered and quality > 0:
            choices.append((-quality, position, code))
    return min(choices)[2] if choices else None


# --- formats -------------------------------------------------------------------------------------------------------

def _locale(language: str | None = None) -> Locale:
    try:
        return Locale.parse(language or current_language())
    except (ValueError, UnknownLocaleError):
        return Locale.parse(DEFAULT_LANGUAGE)


def format_day(value: date | datetime | None, date_format: str | None = None, language: str | None = None) -> str:
    """A date in the person's chosen format (DD/MM/YYYY …), else the language's medium form (`3 Nov 2026`)."""
    if value is None:
        return ""
    pattern = DATE_PATTERNS.get(date_format or _date_format.get() or "", "medium")
    day = value.date() if isinstance(value, datetime) else value
    return babel_date(day, pattern, locale=_locale(language))


def format_moment(value: datetime | str | None, date_format: str | None = None, language: str | None = None, *,
                  utc: bool = False) -> str:
    """A date and time in the person's date format followed by the time of day (and "UTC" with `utc`). An ISO
    text (an e-mail's context is JSON) is read first; any other text is shown as it is."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if value is None:
        return ""
    text = f"{format_day(value, date_format, language)} {babel_datetime(value, 'HH:mm', locale=_locale(language))}"
    return f"{text} UTC" if utc else text


def format_money(amount: Decimal | float | int | str | None, currency: str = "EUR", language: str | None = None) -> str:
    """An amount with its currency as the language writes it (fr: `1 234,56 €`)."""
    if amount is None or amount == "":
        return ""
    return format_currency(Decimal(str(amount)), currency or "EUR", locale=_locale(language))


def format_number(value: Decimal | float | int | str | None, decimals: int | None = None,
                  language: str | None = None) -> str:
    """A number as the language writes it; `decimals` fixes the digits after the separator."""
    if value is None or value == "":
        return ""
    pattern = None if decimals is None else "#,##0." + "0" * decimals if decimals else "#,##0"
    return format_decimal(Decimal(str(value)), pattern, locale=_locale(language))


def format_month(value: date | datetime | None, language: str | None = None) -> str:
    """A month and its year (`November 2026`, `novembre 2026`)."""
    return "" if value is None else babel_date(value, "LLLL yyyy", locale=_locale(language))


def country_name(code: str | None, language: str | None = None) -> str:
    """A country's name (ISO 3166-1 alpha-2 code) as the language writes it (fr: `Allemagne`); an unknown code as
    it is."""
    if not code:
        return ""
    return _locale(language).territories.get(code.upper(), code)


def format_phone(value: str | None) -> str:
    """A phone stored as E.164 shown in international form (`+44 113 496 0000`), an extension after it
    (`+44 113 496 0000 x12`); anything else as it is."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def install(env: Any) -> None:
    """Give a Jinja environment the i18n extension (newstyle gettext: `{{ _('…') }}`, `{% trans %}`), bound to the
    language of the moment, and the format filters: date, datetime, money, number, phone."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(gettext=lambda message: translations(current_language()).ugettext(message),
                                  ngettext=lambda singular, plural, n: translations(current_language()).ungettext(
                                      singular, plural, n), newstyle=True)
    env.filters.update({"date": format_day, "datetime": format_moment, "money": format_money,
                        "number": format_number, "phone": format_phone, "month": format_month, "shown": shown})
    env.globals["language_names"] = LANGUAGES


# --- whose language a page speaks ----------------------------------------------------------------------------------

def _reader(context: dict[str, Any]) -> Any:
    """The storefront contact a page is for, when known: the signed-in one, or the one a link was sent to."""
    signed_in = context.get("signed_in")
    return getattr(signed_in, "contact", None) or context.get("contact")


def page_language(request: Any, context: dict[str, Any]) -> tuple[str, str | None]:
    """(language, date format) of a page. The console speaks the staff user's language. A storefront page speaks
    the language the visitor chose with the switcher, else the contact's once known (signed in, or opened from a
    link sent to them), else the best of the visitor's Accept-Language, else the storefront's default language. The
    switcher and Accept-Language choose among the storefront's languages only (`Storefront.languages`)."""
    staff = context.get("staff")
    if staff is not None and getattr(staff, "user", None) is not None:
        return supported(getattr(staff.user, "language", None)) or DEFAULT_LANGUAGE, None
    reader = _reader(context)
    date_format = getattr(reader, "date_format", None)
    storefront = context.get("storefront")
    offered = offered_languages(storefront)
    cookie = host_cookie(LANGUAGE_COOKIE, request.app.state.settings.cookie_secure)
    chosen = supported(request.cookies.get(cookie)) if storefront is not None else None
    known = supported(getattr(reader, "language", None))
    accepted = negotiate(request.headers.get("accept-language"), offered)
    default = supported(getattr(storefront, "default_language", None))
    return (chosen if chosen in offered else None) or known or accepted or default or DEFAULT_LANGUAGE, date_format


def offered_languages(storefront: Any) -> list[str]:
    """The languages a storefront's pages offer to choose from (every language where there is no storefront)."""
    return list(getattr(storefront, "offered_languages", None) or LANGUAGES)


def request_language(request: Any) -> str:
    """The language of an API answer: Accept-Language among the product's languages, else English."""
    return negotiate(request.headers.get("accept-language")) or DEFAULT_LANGUAGE


def later(message: Any) -> LazyProxy:
    """A message (lazy or a plain catalogue msgid) translated when it is shown."""
    return LazyProxy(translate, message, enable_cache=False)


# --- messages kept as data and shown later ---------------------------------------------------------------------------

KEPT_DEPTH = 3  # a message inside a message inside a message: deeper ones are shown as their plain text
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


def as_data(message: Any) -> Any:
    """A message as JSON-able data that keeps it translatable: a lazy message (`_l`) as {"text": msgid, "values":
    {...}} (a value that is a lazy message itself kept the same way), any other message as its text (a catalogue
    msgid, looked up when shown)."""
    if isinstance(message, LazyText):
        return {"text": message.msgid, "values": {name: _value_data(value) for name, value in message.values.items()}}
    return str(message)


def _value_data(value: Any) -> Any:
    if isinstance(value, LazyText):
        return as_data(value)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


def shown(data: Any, depth: int = 0) -> str:
    """Data made by `as_data` as text in the language of the moment. Values are put in by name only (no % format
    specifications: the data may come back from a cookie); an unknown name stays as it is."""
    if isinstance(data, dict) and isinstance(data.get("text"), str) and depth < KEPT_DEPTH:
        given = data.get("values") if isinstance(data.get("values"), dict) else {}
        values = {name: shown(value, depth + 1) if isinstance(value, dict) else str(value)
                  for name, value in given.items()}
        msgid = data["text"]
        return _PLACEHOLDER.sub(lambda m: "%" if m.group(0) == "%%" else values.get(m.group(1), m.group(0)),
                                translations(current_language()).ugettext(msgid))
    return translate(data) if isinstance(data, str) else str(data)


def from_data(data: Any) -> LazyProxy:
    """Data made by `as_data`, translated each time it is shown."""
    return LazyProxy(shown, data, enable_cache=False)


def joined(messages: list[Any], separator: str = " ") -> LazyProxy:
    """Several messages as one, each translated when shown (e.g. every problem of a refused password)."""
    return LazyProxy(lambda: separator.join(translate(message) for message in messages), enable_cache=False)


def filled(message: Any, **values: Any) -> LazyProxy:
    """A message kept with its placeholders (`_l("Order %(number)s accepted.")`, e.g. in a table of texts) and the
    values to put in, translated when shown (and kept as data, `as_data`, like any `_l` message with values)."""
    return LazyText(message.msgid if isinstance(message, LazyText) else str(message), **values)
