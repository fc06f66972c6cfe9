"""Console pages for customer files: the template, an upload that is kept on the server and previewed (a dry run:
what would be created, updated, left as it is, and every row's problems), then "Import" or "Cancel"; the list of
past imports. Admins and customer service staff (csr) only: an import may touch any customer of any storefront."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile
from fastapi.responses import FileResponse
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from accountdesk.accounts import service as accounts
from accountdesk.core.errors import Conflict, NotFound, ValidationFailed
from accountdesk.core.i18n import _l
from accountdesk.core.pages import Form as PageForm
from accountdesk.core.pages import PageRoute, flash_redirect, page
from accountdesk.core.settings import Settings
from accountdesk.core.validation import Id
from accountdesk.core.web import DbSession
from accountdesk.imports import columns, service
from accountdesk.imports.models import Import, ImportStatus
from accountdesk.staff.deps import console_page
from accountdesk.staff.models import StaffRole
from accountdesk.staff.service import StaffPrincipal
from accountdesk.storefronts.models import Storefront

router = APIRouter(prefix="/console/imports", route_class=PageRoute, include_in_schema=False)
IMPORTERS = frozenset({StaffRole.admin, StaffRole.csr})
Importer = Annotated[StaffPrincipal, Depends(console_page(IMPORTERS))]
Flag = Annotated[bool, Form()]
OPTION_LABELS = {"update_existing": _l("Update existing accounts and contacts that the file changes"),
                 "good_rows_only": _l("Import the good rows even if some rows have problems"),
                 "send_welcome": _l("E-mail each new contact a welcome with a link to choose a password")}
LISTED = 50


def _folder(settings: Settings) -> Path:
    folder = Path(settings.import_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _storefronts(session: Session) -> list[Storefront]:
    return list(session.scalars(select(Storefront).order_by(Storefront.name)))


@router.get("")
def imports_page(request: Request, session: DbSession, staff: Importer) -> Response:
    """Upload a customer file; the imports so far."""
    return _list_page(request, session, staff, PageForm({"update_existing": "", "good_rows_only": ""}))


def _list_page(request: Request, session: Session, staff: StaffPrincipal, form: PageForm,
               status_code: int = 200) -> Response:
    recent = session.scalars(select(Import).order_by(Import.id.desc()).limit(LISTED)).all()
    names = {s.id: s.name for s in _storefronts(session)}
    return page(request, "imports/list.html", {"staff": staff, "form": form, "imports": recent,
                                               "storefronts": list(names.items()), "storefront_names": names,
                                               "option_labels": OPTION_LABELS}, status_code)


@router.post("")
def upload(request: Request, session: DbSession, staff: Importer,
           storefront_id: Annotated[str, Form()] = "", file: Annotated[UploadFile | None, File()] = None,
           update_existing: Flag = False, good_rows_only: Flag = False, send_welcome: Flag = False) -> Response:
    """Keep the file on the server and preview it: the dry run of exactly what "Import" will do."""
    values = {"storefront_id": storefront_id, **{k: "on" for k, v in (("update_existing", update_existing),
              ("good_rows_only", good_rows_only), ("send_welcome", send_welcome)) if v}}
    errors: dict[str, str] = {}
    store = session.get(Storefront, int(storefront_id)) if storefront_id.isdigit() else None
    if store is None:
        errors["storefront_id"] = "Choose a storefront."
    name = file.filename or "" if file is not None else ""
    try:
        fmt = columns.file_format(name) if name else None
        if fmt is None:
            errors["file"] = "Choose a .csv or .xlsx file."
    except ValidationFailed as exc:
        errors["file"] = exc.message
        fmt = None
    if errors or fmt is None or store is None or file is None:
        return _list_page(request, session, staff, PageForm.refused(values, errors, "upload"), 422)
    settings: Settings = request.app.state.settings
    stored_name = f"{secrets.token_urlsafe(18)}.{fmt}"
    path = _folder(settings) / stored_name
    with path.open("wb") as out:
        shutil.copyfileobj(file.file, out, 1 << 20)
    options = service.Options(dry_run=True, update_existing=update_existing, good_rows_only=good_rows_only,
                              send_welcome=send_welcome)
    session.commit()  # the import writes in transactions of its own (SQLite: one writer at a time)
    db = request.app.state.db
    record = service.begin(db, storefront_id=store.id, actor=staff.actor, file_name=Path(name).name,
                           options=options, staff_user_id=staff.user.id, stored_name=stored_name)
    try:
        service.run_file(db, settings, record, path, options, staff.actor)
    except ValidationFailed as exc:  # the file itself cannot be read
        path.unlink(missing_ok=True)
        _set_status(db, record.id, ImportStatus.cancelled, {"problems": [str(exc.message)]})
    return flash_redirect(request, f"/console/imports/{record.id}", _l("Preview ready: nothing has been changed yet."))


def _set_status(db, import_id: int, status: str, counts: dict | None = None) -> None:
    with db.transaction() as session:
        values: dict = {"status": status}
        if counts is not None:
            values["counts"] = counts
        session.execute(update(Import).where(Import.id == import_id).values(**values))


@router.get("/template.csv")
def template_csv(request: Request, session: DbSession, staff: Importer) -> Response:
    """The template: every column, with an example row."""
    return _template_response(session, "csv")


@router.get("/template.xlsx")
def template_xlsx(request: Request, session: DbSession, staff: Importer) -> Response:
    """The template as an Excel workbook."""
    return _template_response(session, "xlsx")


def _template_response(session: Session, fmt: str) -> Response:
    keys = [d.key for d in accounts.definitions(session)]
    folder = Path(tempfile.mkdtemp(prefix="accountdesk-template-"))
    path = folder / f"customers-template.{fmt}"
    columns.write(path, columns.column_names(keys), columns.template_rows(keys))
    return FileResponse(path, media_type=columns.exports.MEDIA_TYPES[fmt], filename=path.name,
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))


def _import(session: Session, import_id: int) -> Import:
    record = session.get(Import, import_id)
    if record is None:
        raise NotFound("No such import.", code="import_not_found")
    return record


@router.get("/{import_id}")
def import_page(request: Request, session: DbSession, staff: Importer, import_id: Id) -> Response:
    """An import's preview (before "Import") or outcome: counts, and each row with a message."""
    record = _import(session, import_id)
    store = session.get(Storefront, record.storefront_id)
    options = {k: "on" for k, v in (record.options or {}).items() if v and k in OPTION_LABELS}
    return page(request, "imports/record.html", {
        "staff": staff, "record": record, "storefront": store, "report": record.counts or {},
        "form": PageForm(options, submitted=True, prefix="confirm"), "option_labels": OPTION_LABELS,
        "outcomes": service.OUTCOMES,
        "waiting": record.status in (ImportStatus.uploaded, ImportStatus.refused) and record.stored_name != ""})


@router.post("/{import_id}/confirm")
def confirm(request: Request, session: DbSession, staff: Importer, import_id: Id,
            update_existing: Flag = False, good_rows_only: Flag = False, send_welcome: Flag = False) -> Response:
    """Import the previewed file: the same checks and matching as the preview, now written."""
    record = _import(session, import_id)
    settings: Settings = request.app.state.settings
    path = _folder(settings) / record.stored_name if record.stored_name else None
    session.commit()
    db = request.app.state.db
    with db.transaction() as claim:  # one confirmation wins, however many are sent at once
        won = claim.execute(update(Import).where(Import.id == import_id, Import.stored_name != "",
                                                 Import.status.in_((ImportStatus.uploaded, ImportStatus.refused)))
                            .values(status="importing")).rowcount
    if not won or path is None or not path.exists():
        raise Conflict("This file was already imported or cancelled; upload it again.", code="import_not_waiting")
    options = service.Options(update_existing=update_existing, good_rows_only=good_rows_only,
                              send_welcome=send_welcome)
    try:
        report = service.run_file(db, settings, record, path, options, staff.actor)
    except BaseException:
        _set_status(db, import_id, ImportStatus.refused)
        raise
    if report.imported:
        path.unlink(missing_ok=True)
        _forget_file(db, import_id)
        return flash_redirect(request, f"/console/imports/{import_id}", _l("Imported."))
    return flash_redirect(request, f"/console/imports/{import_id}",
                          "Nothing was imported: some rows need attention. Correct the file and upload it again, or "
                          "import the good rows only.")


def _forget_file(db, import_id: int) -> None:
    with db.transaction() as session:
        session.execute(update(Import).where(Import.id == import_id).values(stored_name=""))


@router.post("/{import_id}/cancel")
def cancel(request: Request, session: DbSession, staff: Importer, import_id: Id) -> Response:
    """Drop a previewed file without importing it."""
    record = _import(session, import_id)
    if record.status not in (ImportStatus.uploaded, ImportStatus.refused) or not record.stored_name:
        raise Conflict("This file was already imported or cancelled.", code="import_not_waiting")
    (_folder(request.app.state.settings) / record.stored_name).unlink(missing_ok=True)
    record.status, record.stored_name = ImportStatus.cancelled, ""
    return flash_redirect(request, "/console/imports", _l("%(file)s was not imported.", file=record.file_name))
