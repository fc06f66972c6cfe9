"""The shortcuts core.validation takes for speed give exactly what the libraries they stand in for give."""

from __future__ import annotations

import string

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from accountdesk.core import validation

LABEL_CHARS = string.ascii_letters + string.digits + "-_.é" + "\u00ad\uff0e"
TLDS = ("com", "de", "co.uk", "example", "test", "local", "onion", "arpa", "invalid", "localhost", "x", "c0m",
        "xn--p1ai")


def library_domain(domain: str) -> str | None:
    try:
        return validate_email(f"a@{domain}", check_deliverability=False).domain
    except EmailNotValidError:
        return None


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.text(LABEL_CHARS, min_size=0, max_size=70), min_size=1, max_size=4), st.sampled_from(TLDS))
def test_a_plain_domain_is_what_email_validator_makes_of_it(labels: list[str], tld: str) -> None:
    domain = ".".join([*labels, tld])
    if validation._plain_domain(domain):
        assert library_domain(domain) == domain


def test_plain_domains_are_taken_and_the_rest_left_to_email_validator() -> None:
    assert validation._plain_domain("w000001.example")
    assert validation._plain_domain("textiles-bristol-pharma312.co.uk")
    for domain in ("ab--cd.com", "-a.com", "a-.com", "xn--p1ai.ru", "mail.test", "a.localhost", "A.com", "a.c0m",
                   "a..com", "com", "a." + "b" * 64 + ".com", "ü.de"):
        assert not validation._plain_domain(domain), domain
    assert validation.normalise_email("Ann@Hafen.example") == "ann@hafen.example"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["+44 20 7946 0958", "020 7946 0958", "+1 213 555 0100", "040 1234567", "12", "+49 30 1",
                        " +39 06 1234 5678 ", "tel:+1-213-555-0100"]),
       st.sampled_from([None, "GB", "DE", "US", "de", "", "IT"]))
def test_a_phone_is_read_as_phonenumbers_reads_it_however_often_it_comes(value: str, country: str | None) -> None:
    expected = _library(value, country)
    assert _outcome(value, country) == expected == _outcome(value, country)


def _library(value: str, country: str | None) -> str:
    try:
        number = phonenumbers.parse(value.strip(), (country or "").upper() or None)
    except phonenumbers.NumberParseException:
        return "error: Enter a phone number with its country code, for example +44 20 7946 0958."
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        return "error: This phone number is not valid."
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _outcome(value: str, country: str | None) -> str:
    try:
        return validation.normalise_phone(value, country)
    except ValueError as exc:
        return f"error: {exc}"
