"""The languages and date formats a person may choose (a contact's language and date format, an account's preferred
language), with the names the forms show."""

LANGUAGES = {"en": "English", "fr": "Français", "de": "Deutsch"}
DATE_FORMATS = {"DD/MM/YYYY": "%d/%m/%Y", "MM/DD/YYYY": "%m/%d/%Y", "YYYY-MM-DD": "%Y-%m-%d", "DD.MM.YYYY": "%d.%m.%Y"}
