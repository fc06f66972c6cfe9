"""Fuzzing every operation of the API with schemathesis (its Python API, in process): as an admin and as a signed-in
buyer, on SQLite and PostgreSQL. No answer may be a server error or break the documented response schema.

Two profiles per operation: `hostile` sends whatever the schema allows and what it does not (control characters,
unknown fields, ids of no row), `plain` sends printable text and the ids of real rows, so that requests get past the
edge checks into the services. A few derandomized examples per operation keep `make test` within its time budget."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from schemathesis.errors import FailureGroup

from accountdesk.contacts.models import Contact
from accountdesk.core.security import hash_password
from accountdesk.staff.models import StaffUser
from tests import factories as f
from tests.erp_world import ErpWorld, file_erp  # noqa: F401 — the fixture
from tests.reseller_world import customer, world

CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.response_schema_conformance]
RENEWAL_ADDRESS = ("198.51.100.7", 40000)  # not the fuzzer's: its failed sign-ins must not rate-limit renewals


@dataclass(frozen=True, eq=False)
class Profile:
    name: str
    examples: dict[GenerationMode, int]
    config: dict[str, Any]  # schemathesis.toml's settings, given here so that no file on the machine changes them
    real_rows: bool  # path ids and slugs of rows that exist, and printable text only


PROFILES = [
    Profile("hostile", {GenerationMode.POSITIVE: 3, GenerationMode.NEGATIVE: 2}, {}, real_rows=False),
    Profile("plain", {GenerationMode.POSITIVE: 4}, {"generation": {"allow-extra-parameters": False}}, real_rows=True),
]


@dataclass
class Credential:
    """A bearer token obtained through the API, and obtained again when a fuzzed request ended it (a sign-out, a
    password set by staff)."""

    name: str
    obtain: Callable[[], str]
    works: Callable[[dict[str, str]], bool]
    token: str = ""
    renewals: int = 0

    def headers(self) -> dict[str, str]:
        if not self.token:
            self.token = self.obtain()
        return {"Authorization": f"Bearer {self.token}"}

    def refused(self) -> None:
        """After a 401: the operation is not this credential's, or its token has ended."""
        if not self.works(self.headers()):
            self.token, self.renewals = "", self.renewals + 1


@dataclass
class Tally:
    cases: int = 0
    server_errors: int = 0
    erring: set[str] = field(default_factory=set)  # operations that answered a server error
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)

    def record(self, label: str, credential: Credential, failure: str) -> None:
        self.failures.setdefault((label, failure.splitlines()[0]), f"[{credential.name}] {failure}")

    def server_error(self, label: str, credential: Credential, failure: str) -> None:
        self.server_errors += 1
        self.erring.add(label)
        self.record(label, credential, failure)


@dataclass
class Fuzzer:
    staff: Credential
    buyer: Credential
    rows: dict[str, Any]  # path parameter -> a real row's id or slug
    tally: Tally = field(default_factory=Tally)
    drawn: dict[tuple, list[schemathesis.Case]] = field(default_factory=dict)

    def run(self, operation: Any, profile: Profile, mode: GenerationMode, credential: Credential) -> None:
        fixed = {name: value for name, value in self.rows.items() if f"{{{name}}}" in operation.path}
        if not profile.real_rows:  # the buyer's cases name the buyer's storefront: past the storefront look-up
            fixed = {"slug": fixed["slug"]} if "slug" in fixed and credential is self.buyer else {}
        for case in self.cases(operation, profile, mode, fixed):
            self.call(operation.label, case, credential)

    def cases(self, operation: Any, profile: Profile, mode: GenerationMode,
              fixed: dict[str, Any]) -> list[schemathesis.Case]:
        """The operation's cases, drawn once and sent with each credential (drawing costs more than answering)."""
        key = (operation.label, profile.name, mode, tuple(sorted(fixed.items())))
        if key in self.drawn:
            return self.drawn[key]
        drawn = self.drawn[key] = []
        if mode is GenerationMode.NEGATIVE and not negatable(operation, fixed):
            return drawn  # Hypothesis would reject a thousand drafts before it gives up

        @settings(max_examples=profile.examples[mode], deadline=None, derandomize=True, database=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed or None))
        def draw(case: schemathesis.Case) -> None:
            if profile.real_rows:
                case.body, case.query = printable(case.body), printable(case.query)
            drawn.append(case)

        try:
            draw()
        except Unsatisfiable:  # nothing in the operation can be made invalid (no parameters, no body)
            assert mode is GenerationMode.NEGATIVE, operation.label
        return drawn

    def call(self, label: str, case: schemathesis.Case, credential: Credential) -> None:
        headers = credential.headers()
        self.tally.cases += 1
        try:
            response = case.call(headers=headers)
        except Exception as exc:  # noqa: BLE001 — the app raised instead of answering: a server error too
            self.tally.server_error(label, credential, f"raised {type(exc).__name__}: {exc}\n"
                                                       f"{case.as_curl_command(headers=headers)}")
            return
        self.tally.statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.tally.server_error(label, credential, f"{response.status_code} {response.text[:300]}\n"
                                                       f"{case.as_curl_command(headers=headers)}")
        if response.status_code == 401:
            credential.refused()
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                self.tally.record(label, credential, f"{failure.title}\n{failure.message}\n"
                                                     f"{case.as_curl_command(headers=headers)}")


def negatable(operation: Any, fixed: dict[str, Any]) -> bool:
    """Whether the operation has something a negative case can break: a body, a query parameter, a header other than
    the idempotency key, or a path parameter that is not given and is more than any text (an id, a code)."""
    def breakable(parameter: Any) -> bool:
        schema = parameter.definition.get("schema", {})
        return schema.get("type") != "string" or bool({"pattern", "enum", "maxLength", "minLength"} & set(schema))

    return bool([p for p in operation.path_parameters if p.name not in fixed and breakable(p)]
                or list(operation.query) or list(operation.body)
                or [h for h in operation.headers if h.name.lower() != "idempotency-key"])


def printable(value: Any) -> Any:
    if isinstance(value, str):
        return "".join(c for c in value if c.isprintable())
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [printable(v) for v in value]
    return value


def fuzzer(db, app) -> Fuzzer:
    """An admin, a reseller with its storefront and a customer whose buyer is signed in, all through the API."""
    admin = f.staff(db, "admin")
    reseller = world(db)
    account = customer(db, reseller)
    buyer = f.contact(db, account, reseller.storefront)
    renewer = TestClient(app, client=RENEWAL_ADDRESS)

    def repaired(model: type[StaffUser] | type[Contact], row_id: int, **fields: Any) -> str:
        """Undo what the fuzzed requests did to the credential's user: turned off, password set, e-mail changed."""
        with db.transaction() as session:
            row = session.get(model, row_id)
            for name, value in {"password_hash": hash_password(f.PASSWORD), **fields}.items():
                setattr(row, name, value)
            return row.email

    def staff_token() -> str:
        email = repaired(StaffUser, admin.id, active=True, email=admin.email)
        answer = renewer.post("/api/v1/staff/tokens", json={"email": email, "password": f.PASSWORD})
        assert answer.status_code == 201, answer.text
        return answer.json()["access_token"]

    def buyer_token() -> str:
        email = repaired(Contact, buyer.id, status="active", email=buyer.email)
        answer = renewer.post(f"/api/v1/storefronts/{reseller.storefront.slug}/sessions",
                              json={"email": email, "password": f.PASSWORD})
        assert answer.status_code == 201, answer.text
        return answer.json()["access_token"]

    def works(path: str) -> Callable[[dict[str, str]], bool]:
        return lambda headers: renewer.get(path, headers=headers).status_code == 200

    rows = {"slug": reseller.storefront.slug, "reseller_id": reseller.reseller.id, "customer_id": account.id,
            "account_id": account.id, "contact_id": buyer.id, "user_id": buyer.id}
    return Fuzzer(Credential("staff", staff_token, works("/api/v1/storefronts")),
                  Credential("buyer", buyer_token, works(f"/api/v1/storefronts/{rows['slug']}/sessions/current")),
                  rows)


def test_no_operation_answers_a_server_error_or_breaks_its_schema(db, app, file_erp: ErpWorld):
    app.state.erp = file_erp.gateway  # an ERP that answers: its being down is a 503 of its own, tested elsewhere
    fuzz = fuzzer(db, app)
    schemas = {p: schemathesis.openapi.from_asgi("/openapi.json", app, config=schemathesis.Config.from_dict(p.config))
               for p in PROFILES}
    operations = {p: [result.ok() for result in schema.get_all_operations()] for p, schema in schemas.items()}
    # All of the buyer's cases first: the staff's cases may deactivate the buyer's account for good.
    for credential in (fuzz.buyer, fuzz.staff):
        for profile in PROFILES:
            for operation in operations[profile]:
                for mode in profile.examples:
                    fuzz.run(operation, profile, mode, credential)
    tally = fuzz.tally
    print(f"\nfuzz {db.engine.dialect.name}: {len(operations[PROFILES[0]])} operations, {tally.cases} cases, "
          f"{tally.server_errors} server errors in {len(tally.erring)} operations, "
          f"statuses {dict(sorted(tally.statuses.items()))}, "
          f"renewed staff {fuzz.staff.renewals}x, buyer {fuzz.buyer.renewals}x")
    assert not tally.failures, "\n\n".join(tally.failures.values())
    assert tally.server_errors == 0


def test_every_operation_documents_the_one_error_shape(app):
    spec = app.openapi()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status in ("4XX", "503"):
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # a shape this API never answers
