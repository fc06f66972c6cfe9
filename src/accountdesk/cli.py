"""The `accountdesk` command: serve, worker, db upgrade, demo, create-staff, import, export."""

from __future__ import annotations

import logging
import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from accountdesk.core.languages import LANGUAGES

app = typer.Typer(help="accountdesk: customer accounts, storefront users, registration, resellers and ERP.",
                  no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
oidc_app = typer.Typer(help="The storefronts' OpenID Connect provider.", no_args_is_help=True)
app.add_typer(oidc_app, name="oidc")
console = Console()
Language = StrEnum("Language", {code: code for code in LANGUAGES})  # the languages a report can be printed in


def serving_app():
    """The ASGI app for `serve` (one outbox worker thread per process)."""
    from accountdesk.app import create_app
    from accountdesk.core.access_log import lighter_records

    lighter_records()
    return create_app(run_worker=True)


@app.command()
def serve(host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
          workers: Annotated[int, typer.Option(help="App processes; each also runs one outbox worker thread.")] = 1,
          ) -> None:
    """Serve the API, the console and the storefront pages."""
    import uvicorn

    from accountdesk.core.access_log import server_logging
    from accountdesk.core.settings import get_settings
    from accountdesk.core.web import proxy_options

    settings = get_settings()
    if not settings.hashing_threads:  # the app processes share the CPUs: each hashes on its share of them
        cpus = len(os.sched_getaffinity(0))
        os.environ["ACCOUNTDESK_HASHING_THREADS"] = str(max(1, cpus // max(1, workers)))
    console.print(f"accountdesk on [bold]http://{host}:{port}[/] — console at http://{host}:{port}/console "
                  f"(database {settings.database_url.split('@')[-1]})")
    uvicorn.run("accountdesk.cli:serving_app", factory=True, host=host, port=port, workers=workers,
                log_config=server_logging(), log_level="info", limit_concurrency=settings.max_concurrent_requests,
                **proxy_options(settings))


@app.command()
def worker() -> None:
    """Deliver outbox messages (e-mail, ERP pushes) until stopped; run as many as you like on PostgreSQL."""
    from accountdesk.app import outbox_handlers
    from accountdesk.core import security
    from accountdesk.core.db import Database
    from accountdesk.core.outbox import Worker
    from accountdesk.core.ratelimit import RateLimits
    from accountdesk.core.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per webhook or ERP request
    settings = get_settings()
    security.bind(settings)
    db = Database(settings.database_url)
    limits = RateLimits(db, settings.redis_url, settings.rate_limits_enabled)
    runner = Worker(db, outbox_handlers(settings, db), settings.outbox_poll_seconds, settings.outbox_max_attempts,
                    chores=[limits.forget_expired])
    console.print("outbox worker running; Ctrl+C stops it")
    try:
        runner.run()
    except KeyboardInterrupt:
        runner.stop()


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or migrate the schema to the newest version (the only way the schema is made)."""
    from accountdesk.core.migrate import upgrade
    from accountdesk.core.settings import get_settings

    upgrade(get_settings().database_url, revision)
    console.print(f"database at revision {revision}")
    if revision == "head" and _signing_key(rotate=False):
        console.print("created the first OpenID Connect signing key")


def _signing_key(*, rotate: bool) -> bool:
    from accountdesk.core import security
    from accountdesk.core.db import Database
    from accountdesk.core.settings import get_settings
    from accountdesk.oidc import keys

    settings = get_settings()
    security.bind(settings)  # the keys' private halves are sealed with the secret key
    db = Database(settings.database_url)
    try:
        with db.transaction() as session:
            return keys.rotate(session) is not None if rotate else keys.ensure_key(session)
    finally:
        db.dispose()


@oidc_app.command("rotate-keys")
def rotate_keys() -> None:
    """Make a new signing key; the previous one stays published until the next rotation (tokens it signed still
    verify), older ones are withdrawn. Rotate, wait at least the ID-token lifetime, rotate again when you like."""
    _signing_key(rotate=True)
    console.print("new OpenID Connect signing key in use; the previous one is still published")


@app.command("create-staff")
def create_staff(email: Annotated[str, typer.Option(help="Sign-in e-mail.")],
                 password: Annotated[str, typer.Option(help="Password (12+ characters, not a common one).",
                                                       prompt=True, hide_input=True, confirmation_prompt=True)],
                 role: Annotated[str, typer.Option(help="admin, csr, approver or reseller_admin.")] = "admin",
                 name: Annotated[str, typer.Option(help="Display name.")] = "",
                 reseller_account: Annotated[str | None,
                                             typer.Option(help="Reseller account number (reseller_admin).")] = None,
                 ) -> None:
    """Create a back-office user."""
    from sqlalchemy import select

    from accountdesk.accounts.models import Account
    from accountdesk.core import security
    from accountdesk.core.db import Database
    from accountdesk.core.errors import AppError
    from accountdesk.core.settings import get_settings
    from accountdesk.staff_admin.service import create_staff as make

    settings = get_settings()
    security.bind(settings)
    db = Database(settings.database_url)
    try:
        with db.transaction() as session:
            reseller_id = None
            if reseller_account:
                reseller_id = session.scalar(select(Account.id).where(Account.number == reseller_account))
                if reseller_id is None:
                    raise AppError(f"No account numbered {reseller_account}.")
            user = make(session, email, password, role, name, reseller_id)
            console.print(f"created {user.role} {user.email}")
    except AppError as exc:
        # the message and the field messages often say the same (a weak password's problems): each said once
        said = dict.fromkeys(part for text in (exc.message, *exc.fields.values()) for part in _sentences(str(text)))
        console.print(" ".join(said), style="red", highlight=False, markup=False)
        raise typer.Exit(1) from exc
    except Exception as exc:  # IntegrityError: e-mail taken
        console.print(f"[red]could not create the staff user: {exc.__class__.__name__}[/]")
        raise typer.Exit(1) from exc


def _sentences(text: str) -> list[str]:
    """A message cut into its sentences (a refused password's message joins one sentence per problem)."""
    return [part.strip() for part in re.split(r"(?<=[.!?])\s+", text) if part.strip()]


@app.command("import")
def import_file(path: Annotated[Path, typer.Argument(help="A .csv or .xlsx file in the column set of the template.",
                                                      exists=True, dir_okay=False, readable=True)],
                dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and match every row, change "
                                                                         "nothing.")] = False,
                storefront: Annotated[str | None, typer.Option(help="Slug of the storefront the customers sign in "
                                                                    "to (needed when there are several).")] = None,
                update_existing: Annotated[bool, typer.Option("--update-existing", help="Change stored accounts "
                                                                                        "and contacts that rows "
                                                                                        "differ from.")] = False,
                good_rows_only: Annotated[bool, typer.Option("--good-rows-only", help="Import the good rows of a "
                                                                                      "file that has bad ones "
                                                                                      "(else nothing).")] = False,
                send_welcome: Annotated[bool, typer.Option("--send-welcome", help="E-mail each new contact a "
                                                                                  "welcome with an activation "
                                                                                  "link, a few per minute.")] = False,
                language: Annotated[Language | None, typer.Option(
                    "--language", case_sensitive=False,
                    help="Language of the report: en, fr or de (default: the locale's, LC_ALL, LC_MESSAGES or "
                         "LANG, else en).")] = None,
                ) -> None:
    """Import accounts, contacts and addresses from a customer file (README: "Importing customers")."""
    from accountdesk.core.i18n import speaking

    with speaking(language.value if language else locale_language()):
        _import_file(path, dry_run, storefront, update_existing, good_rows_only, send_welcome)


def locale_language() -> str:
    """The language of the process's locale (LC_ALL, then LC_MESSAGES, then LANG, as Babel reads them) when it is
    one of the product's, else English."""
    from babel import default_locale

    from accountdesk.core.i18n import DEFAULT_LANGUAGE, supported

    return supported(default_locale(("LC_ALL", "LC_MESSAGES", "LANG"))) or DEFAULT_LANGUAGE


def _import_file(path: Path, dry_run: bool, storefront: str | None, update_existing: bool, good_rows_only: bool,
                 send_welcome: bool) -> None:
    """The import, in the language of the moment (`import_file`'s)."""
    import getpass

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from accountdesk.core.audit import Actor
    from accountdesk.core.db import Database
    from accountdesk.core.errors import AppError
    from accountdesk.core.i18n import _
    from accountdesk.core.settings import get_settings
    from accountdesk.imports import service as imports

    settings = get_settings()
    db = Database(settings.database_url)
    options = imports.Options(dry_run=dry_run, update_existing=update_existing, good_rows_only=good_rows_only,
                              send_welcome=send_welcome)
    actor = Actor("system", None, f"accountdesk import ({getpass.getuser()})")
    try:
        with db.transaction() as session:
            storefront_id = imports.storefront_by_slug(session, storefront).id
        record = imports.begin(db, storefront_id=storefront_id, actor=actor, file_name=path.name, options=options)
        # redrawn after each chunk rather than by a thread of its own: with no other thread running, the import's
        # checking processes start as copies of this one (imports.service._start_method), not as new interpreters
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn(_("rows"), markup=False), TimeElapsedColumn(), console=console,
                      transient=False, auto_refresh=False) as progress:
            task = progress.add_task(_("dry run") if dry_run else _("import"), total=_data_rows(path))

            def advance(rows: int) -> None:
                progress.advance(task, rows)
                progress.refresh()

            report = imports.run_file(db, settings, record, path, options, actor, progress=advance)
    except AppError as exc:
        console.print(str(exc.message), style="red", highlight=False, markup=False)
        raise typer.Exit(1) from exc
    finally:
        db.dispose()
    _print_report(report, dry_run, record.id)
    if not report.imported and not dry_run:
        raise typer.Exit(1)


def _data_rows(path: Path) -> int | None:
    """Lines of a CSV file less its header, for the progress bar (an XLSX file's total is not known up front)."""
    if path.suffix.lower() != ".csv":
        return None
    with path.open("rb") as handle:
        return max(0, sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1)


def _print_report(report, dry_run: bool, import_id: int) -> None:
    """The import's report in the language of the moment: the file's problems, each row with a message, the counts
    and what happened."""
    from accountdesk.core.i18n import _, shown
    from accountdesk.imports.service import OUTCOMES

    counts = report.counts
    say = {"highlight": False, "markup": False, "soft_wrap": True}  # a line per message, as long as it is
    for problem in report.problems:
        console.print(shown(problem), style="red", **say)
    for row in report.rows:
        if row["messages"]:
            outcome = OUTCOMES.get(row["outcome"], row["outcome"])
            console.print(_("line %(line)s (%(outcome)s):", line=row["line"], outcome=outcome) + " "
                          + " ".join(map(shown, row["messages"])), **say)
    console.print(_("%(rows)s rows: %(created)s created, %(updated)s updated, %(unchanged)s unchanged, %(skipped)s "
                    "left as they are, %(failed)s with problems", **counts), **say)
    console.print(_("accounts %(accounts_created)s new, %(accounts_updated)s changed; contacts %(contacts_created)s "
                    "new, %(contacts_updated)s changed; addresses %(addresses_created)s new, %(addresses_updated)s "
                    "changed; welcome e-mails %(welcome_emails)s", **counts), **say)
    if dry_run:
        console.print(_("dry run (import %(id)s): nothing was changed", id=import_id), **say)
    elif report.imported:
        console.print(_("imported (import %(id)s)", id=import_id), style="green", **say)
    else:
        console.print(_("nothing was imported (import %(id)s): correct the rows above, or import the good rows only "
                        "with --good-rows-only", id=import_id), style="red", **say)


@app.command("export")
def export_file(path: Annotated[Path, typer.Argument(help="The file to write: .csv or .xlsx.", dir_okay=False)],
                storefront: Annotated[str | None, typer.Option(help="Slug of the storefront (needed when there are "
                                                                    "several).")] = None) -> None:
    """Write a storefront's customers in the import's column set (importing the file again changes nothing)."""
    from accountdesk.core.db import Database
    from accountdesk.core.errors import AppError
    from accountdesk.core.settings import get_settings
    from accountdesk.imports import service as imports
    from accountdesk.imports.export import export_file as write

    db = Database(get_settings().database_url)
    try:
        with db.transaction() as session:
            count = write(session, imports.storefront_by_slug(session, storefront), path)
    except AppError as exc:
        console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(1) from exc
    finally:
        db.dispose()
    console.print(f"{count} rows written to {path}")


@app.command()
def demo(serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve once loaded.")] = True,
         host: str = "127.0.0.1", port: int = 8000) -> None:
    """Migrate the database, load demo storefronts, accounts, contacts and staff, then serve."""
    from accountdesk.core.migrate import upgrade
    from accountdesk.core.settings import get_settings
    from accountdesk.demo import DEMO_PASSWORD, load, oidc_instructions

    settings = get_settings()
    upgrade(settings.database_url)
    loaded = load(settings)
    console.print("demo data " + ("loaded" if loaded else "already present"))
    console.print(f"console: http://{host}:{port}/console  "
                  f"sign in as [bold]admin@example.com[/] / [bold]{DEMO_PASSWORD}[/]")
    console.print(f"storefront: http://{host}:{port}/s/main  (buyer anna@example.com / {DEMO_PASSWORD})")
    console.print(f"ERP storefront: http://{host}:{port}/s/erp  (maria.lopez@harbourtools.example / {DEMO_PASSWORD}: "
                  "two accounts, the account switcher)")
    for line in oidc_instructions(settings.base_url):
        console.print(line, soft_wrap=True, highlight=False)
    if serve_after:
        serve(host=host, port=port, workers=1)


if __name__ == "__main__":
    app()
