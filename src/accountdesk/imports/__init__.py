"""Customer files: import accounts, contacts and addresses from CSV or XLSX (with a dry run), export them back."""
