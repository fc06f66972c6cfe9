"""The `accountdesk` command: serve, worker, db upgrade, demo, create-staff."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="accountdesk: customer accounts, storefront users, registration, resellers and ERP.",
                  no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()


def serving_app():
    """The ASGI app for `serve` (one outbox worker thread per process)."""
    from accountdesk.app import create_app

    return create_app(run_worker=True)


@app.command()
def serve(host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
          workers: Annotated[int, typer.Option(help="App processes; each also runs one outbox worker thread.")] = 1,
          ) -> None:
    """Serve the API, the console and the storefront pages."""
    import uvicorn

    from accountdesk.core.settings import get_settings
    from accountdesk.core.web import proxy_options

    settings = get_settings()
    console.print(f"accountdesk on [bold]http://{host}:{port}[/] — console at http://{host}:{port}/console "
                  f"(database {settings.database_url.split('@')[-1]})")
    uvicorn.run("accountdesk.cli:serving_app", factory=True, host=host, port=port, workers=workers,
                log_level="info", limit_concurrency=settings.max_concurrent_requests, **proxy_options(settings))


@app.command()
def worker() -> None:
    """Deliver outbox messages (e-mail, ERP pushes) until stopped; run as many as you like on PostgreSQL."""
    from accountdesk.app import outbox_handlers
    from accountdesk.core.db import Database
    from accountdesk.core.outbox import Worker
    from accountdesk.core.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = get_settings()
    db = Database(settings.database_url)
    runner = Worker(db, outbox_handlers(settings, db), settings.outbox_poll_seconds, settings.outbox_max_attempts)
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
    from accountdesk.core.db import Database
    from accountdesk.core.errors import AppError
    from accountdesk.core.settings import get_settings
    from accountdesk.staff_admin.service import create_staff as make

    db = Database(get_settings().database_url)
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
        details = " ".join(str(text) for text in exc.fields.values() if str(text) != str(exc.message))
        console.print(f"[red]{exc.message}[/] {details}".rstrip())
        raise typer.Exit(1) from exc
    except Exception as exc:  # IntegrityError: e-mail taken
        console.print(f"[red]could not create the staff user: {exc.__class__.__name__}[/]")
        raise typer.Exit(1) from exc


@app.command()
def demo(serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve once loaded.")] = True,
         host: str = "127.0.0.1", port: int = 8000) -> None:
    """Migrate the database, load demo storefronts, accounts, contacts and staff, then serve."""
    from accountdesk.core.migrate import upgrade
    from accountdesk.core.settings import get_settings
    from accountdesk.demo import DEMO_PASSWORD, load

    upgrade(get_settings().database_url)
    loaded = load()
    console.print("demo data " + ("loaded" if loaded else "already present"))
    console.print(f"console: http://{host}:{port}/console  "
                  f"sign in as [bold]admin@example.com[/] / [bold]{DEMO_PASSWORD}[/]")
    console.print(f"storefront: http://{host}:{port}/s/main  (buyer anna@example.com / {DEMO_PASSWORD})")
    console.print(f"ERP storefront: http://{host}:{port}/s/erp  (maria.lopez@harbourtools.example / {DEMO_PASSWORD}: "
                  "two accounts, the account switcher)")
    if serve_after:
        serve(host=host, port=port, workers=1)


if __name__ == "__main__":
    app()
