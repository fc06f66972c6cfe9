"""Refused input in the product's own words. pydantic, email-validator and phonenumbers describe a problem in their
own English ("Input should be less than or equal to 28"); an API answer or a page says it as the product does,
translated when shown. The API answer's code stays the same (`validation_failed`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from babel.support import LazyProxy

from accountdesk.core.i18n import _l, format_number, later

# Our own pydantic error types (PydanticCustomError): each is also the code of the API answer that carries it.
OWN_TYPES: dict[str, Any] = {
    "card_data_refused": _l("Never send a card number or security code: save the payment provider's token for the "
                            "card, with its brand, last four digits and expiry."),
}

_NUMBER = ("int_parsing", "int_type", "int_parsing_size", "float_parsing", "float_type", "decimal_parsing",
           "decimal_type", "finite_number", "complex_type", "complex_str_parsing", "fraction_type",
           "fraction_parsing")
_DATE = ("date_parsing", "date_type", "date_from_datetime_parsing", "date_from_datetime_inexact")
_MOMENT = ("datetime_parsing", "datetime_type", "datetime_object_invalid", "datetime_from_date_parsing",
           "timezone_naive", "timezone_aware")
_CHOICE = ("literal_error", "enum", "union_tag_invalid", "union_tag_not_found")
_STRUCTURE = ("dict_type", "model_type", "model_attributes_type", "mapping_type", "dataclass_type")
_LIST = ("list_type", "tuple_type", "set_type", "frozen_set_type", "iterable_type")
_URL = ("url_parsing", "url_scheme", "url_type", "url_syntax_violation")
# pydantic type -> message
_MESSAGES: dict[str, Any] = {
    "missing": _l("This field is required."),
    "int_from_float": _l("Enter a whole number."),
    "bool_parsing": _l("Choose yes or no."),
    "bool_type": _l("Choose yes or no."),
    "string_type": _l("Enter text."),
    "string_unicode": _l("Enter text."),
    "string_pattern_mismatch": _l("This value does not have the expected form."),
    "string_not_ascii": _l("Use only letters, digits and signs without accents."),
    "extra_forbidden": _l("This field cannot be changed here."),
    "none_required": _l("Leave this field out."),
    "url_too_long": _l("Enter a shorter web address."),
    "uuid_parsing": _l("Enter a valid identifier."),
    "uuid_type": _l("Enter a valid identifier."),
    "time_parsing": _l("Enter a time as HH:MM."),
    "time_type": _l("Enter a time as HH:MM."),
    **dict.fromkeys(_NUMBER, _l("Enter a number.")),
    **dict.fromkeys(_DATE, _l("Enter a date as YYYY-MM-DD.")),
    **dict.fromkeys(_MOMENT, _l("Enter a date and time as YYYY-MM-DDTHH:MM:SSZ.")),
    **dict.fromkeys(_CHOICE, _l("Choose one of the options.")),
    **dict.fromkeys(_STRUCTURE, _l("Send an object with this item's fields.")),
    **dict.fromkeys(_LIST, _l("Send a list.")),
    **dict.fromkeys(_URL, _l("Enter a web address such as https://example.com.")),
}
# pydantic type -> (its bound in the error's context, the message with that bound)
_BOUNDED: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "string_too_short": ("min_length", lambda n: _l("Use at least %(count)s characters.", count=n)),
    "string_too_long": ("max_length", lambda n: _l("Use at most %(count)s characters.", count=n)),
    "too_short": ("min_length", lambda n: _l("Give at least %(count)s items.", count=n)),
    "too_long": ("max_length", lambda n: _l("Give at most %(count)s items.", count=n)),
    "greater_than": ("gt", lambda n: _l("Enter a number above %(limit)s.", limit=n)),
    "greater_than_equal": ("ge", lambda n: _l("Enter %(limit)s or more.", limit=n)),
    "less_than": ("lt", lambda n: _l("Enter a number below %(limit)s.", limit=n)),
    "less_than_equal": ("le", lambda n: _l("Enter %(limit)s or less.", limit=n)),
    "multiple_of": ("multiple_of", lambda n: _l("Enter a multiple of %(limit)s.", limit=n)),
    "decimal_max_digits": ("max_digits", lambda n: _l("Use at most %(count)s digits.", count=n)),
    "decimal_max_places": ("decimal_places",
                           lambda n: _l("Use at most %(count)s digits after the decimal point.", count=n)),
    "decimal_whole_digits": ("whole_digits",
                             lambda n: _l("Use at most %(count)s digits before the decimal point.", count=n)),
}
CHECK_THIS = _l("Check this value.")


def _bound(value: Any) -> Any:
    """A bound in a message, as the reader's language writes numbers (`9 223 372 036 854 775 807` in French)."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return LazyProxy(format_number, value, enable_cache=False)
    return value


def problem(error: Mapping[str, Any]) -> Any:
    """What to tell the person about one pydantic error (an item of `ValidationError.errors()`), lazily translated.
    A message our own validators raised (a ValueError) is theirs; pydantic's own is put in our words; an error we
    have no words for gets a general one rather than the library's."""
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind in OWN_TYPES:
        return OWN_TYPES[kind]
    if kind in ("value_error", "assertion_error") and isinstance(ctx.get("error"), Exception):
        cause = ctx["error"]
        return later(cause.args[0]) if cause.args else CHECK_THIS
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return _MESSAGES["missing"]
    if kind in _BOUNDED:
        bound, message = _BOUNDED[kind]
        return message(_bound(ctx.get(bound)))
    return _MESSAGES.get(kind, CHECK_THIS)


def answer_code(errors: list[Mapping[str, Any]], default: str = "validation_failed") -> str:
    """The code of an answer refusing these errors: one of our own error types when there is one (a card number
    sent where only a token may go is `card_data_refused`), else `default`."""
    return next((str(e["type"]) for e in errors if e.get("type") in OWN_TYPES), default)
