"""The languages and date formats a person may choose (a contact's language and date format, an account's preferred
language, a storefront's default language, the languages of the e-mails), with the names the forms show."""

from typing import Literal

LANGUAGES = {"en": "English", "fr": "Français", "de": "Deutsch"}
DATE_FORMATS = {"DD/MM/YYYY": "%d/%m/%Y", "MM/DD/YYYY": "%m/%d/%Y", "YYYY-MM-DD": "%Y-%m-%d", "DD.MM.YYYY": "%d.%m.%Y"}

# The same choices as types for the API's schemas (an enum in OpenAPI).
Language = Literal[tuple(LANGUAGES)]  # type: ignore[valid-type]
DateFormat = Literal[tuple(DATE_FORMATS)]  # type: ignore[valid-type]
