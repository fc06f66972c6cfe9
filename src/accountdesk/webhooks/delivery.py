"""The outbox handler of "webhook" rows: sign with the Standard Webhooks library, POST once with a short time limit
and no redirects, log the attempt, and decide: delivered, retry later (per ACCOUNTDESK_WEBHOOK_RETRY_SECONDS), or
give up because the endpoint has failed for too long (it is disabled and its owner e-mailed)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import httpx
from sqlalchemy import column, select, table
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from accountdesk.core import audit, outbox
from accountdesk.core.audit import Actor
from accountdesk.core.db import Database, utcnow
from accountdesk.core.settings import Settings
from accountdesk.mail import service as mail
from accountdesk.webhooks import service
from accountdesk.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from accountdesk.webhooks.targets import TargetRefused, resolve

log = logging.getLogger("accountdesk.webhooks")
ENDPOINT_SECONDS = 1.0
MAX_ANSWER_BYTES = 64 * 1024  # read (and drop) at most this much of an answer, so the connection can be reused
USER_AGENT = "accountdesk-webhooks/1"
# the owner of an endpoint is a console user (a layer above): only their language is read, to write the mail in it
STAFF_USERS = table("staff_users", column("email"), column("language"))


@dataclass(frozen=True)
class Sending:
    """What one attempt needs: the outbox row's payload and the endpoint's URL and secrets."""

    delivery_id: int
    url: str
    message_id: str
    body: str
    secrets: list[str]


@dataclass(frozen=True)
class Signer:
    url: str
    enabled: bool
    secrets: list[str]
    read_at: float


@dataclass(frozen=True)
class Outcome:
    status: int | None
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def signature(secrets: list[str], message_id: str, at: datetime, body: str) -> str:
    """The webhook-signature header: one `v1,…` signature per valid secret, space separated."""
    return " ".join(Webhook(secret).sign(message_id, at, body) for secret in secrets)


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    waits = [float(part) for part in settings.webhook_retry_seconds.split(",")]
    return timedelta(seconds=waits[min(attempts, len(waits)) - 1])


class DeliveryHandler:
    """One per worker: keeps an HTTP connection pool (loopback and keep-alive receivers are not re-dialled)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings
        self._endpoints: dict[int, Signer] = {}
        self.client = httpx.Client(timeout=httpx.Timeout(settings.webhook_timeout_seconds), follow_redirects=False,
                                   trust_env=False, headers={"user-agent": USER_AGENT})

    def __call__(self, payload: dict[str, Any]) -> None:
        delivery_id = int(payload["delivery_id"])
        endpoint = self._endpoint(int(payload["endpoint_id"]))
        if endpoint is None or not endpoint.enabled:
            self._refuse(delivery_id)
        sending = Sending(delivery_id, endpoint.url, payload["message_id"], payload["body"], endpoint.secrets)
        outcome = self._post(sending)
        self._record(sending, outcome)

    def _endpoint(self, endpoint_id: int) -> Signer | None:
        """The endpoint's URL and secrets, read at most once a second per worker (one transaction fewer per
        delivery); a change reaches deliveries within that second."""
        known = self._endpoints.get(endpoint_id)
        if known is not None and time.monotonic() - known.read_at < ENDPOINT_SECONDS:
            return known
        with self.db.transaction() as session:
            endpoint = session.get(WebhookEndpoint, endpoint_id)
            if endpoint is None:
                self._endpoints.pop(endpoint_id, None)
                return None
            known = Signer(endpoint.url, endpoint.enabled, service.signing_secrets(endpoint), time.monotonic())
        self._endpoints[endpoint_id] = known
        return known

    def _refuse(self, delivery_id: int) -> NoReturn:
        with self.db.transaction() as session:
            delivery = session.get(WebhookDelivery, delivery_id)
            if delivery is not None:
                delivery.status, delivery.last_error = "failed", "endpoint disabled or removed"
        raise outbox.PermanentFailure("endpoint disabled or removed")

    def _post(self, sending: Sending) -> Outcome:
        started = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            target = resolve(sending.url, self.settings)
        except TargetRefused as exc:
            return Outcome(None, f"refused: {exc}", took())
        now = datetime.now(UTC)
        headers = {"content-type": "application/json", "host": target.host_header,
                   "webhook-id": sending.message_id, "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": signature(sending.secrets, sending.message_id, now, sending.body)}
        try:
            with self.client.stream("POST", target.url, content=sending.body.encode(), headers=headers,
                                    extensions={"sni_hostname": target.host}) as answer:
                read = 0
                for chunk in answer.iter_raw():
                    read += len(chunk)
                    if read > MAX_ANSWER_BYTES:
                        break
                return Outcome(answer.status_code, "" if answer.is_success else f"HTTP {answer.status_code}"
                               + (" (redirects are not followed)" if answer.is_redirect else ""), took())
        except httpx.TimeoutException as exc:
            return Outcome(None, f"timed out after {self.settings.webhook_timeout_seconds:g} s ({type(exc).__name__})",
                           took())
        except httpx.HTTPError as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:500], took())

    def _record(self, sending: Sending, outcome: Outcome) -> None:
        refused = outcome.error.startswith("refused:")
        with self.db.transaction() as session:
            delivery = session.get(WebhookDelivery, sending.delivery_id)
            endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
            session.add(WebhookAttempt(delivery_id=delivery.id, response_status=outcome.status,
                                       error=outcome.error[:2000], duration_ms=outcome.duration_ms))
            delivery.attempts += 1
            delivery.response_status, delivery.last_error = outcome.status, outcome.error[:2000]
            if outcome.ok:
                delivery.status, delivery.delivered_at = "delivered", utcnow()
                endpoint.failing_since = None
                return
            give_up = refused or self._failing_too_long(session, endpoint)
            if give_up:
                delivery.status = "failed"
            attempts = delivery.attempts
        if give_up:
            raise outbox.PermanentFailure(outcome.error)
        raise outbox.Retry(outcome.error, retry_delay(self.settings, attempts))

    def _failing_too_long(self, session: Session, endpoint: WebhookEndpoint) -> bool:
        now = utcnow()
        if endpoint.failing_since is None:
            endpoint.failing_since = now
        if now - endpoint.failing_since < timedelta(hours=self.settings.webhook_disable_after_hours):
            return False
        since = f"{endpoint.failing_since:%Y-%m-%d %H:%M} UTC"
        service.disable(session, endpoint, f"every delivery failed since {since}")
        audit.record(session, Actor.system(), "webhook_endpoint.disabled", subject_type="webhook_endpoint",
                     subject_id=endpoint.id, account_id=None, note=endpoint.disabled_reason)
        if endpoint.owner_email:
            language = session.scalar(select(STAFF_USERS.c.language).where(
                STAFF_USERS.c.email == endpoint.owner_email.lower()))
            mail.send(session, "webhook_endpoint_disabled", endpoint.owner_email, language=language or "en", context={
                "name": endpoint.owner_email, "storefront_name": "", "account_name": "", "url": endpoint.url,
                "failing_since": endpoint.failing_since.isoformat(),
                "console_link": f"{self.settings.base_url.rstrip('/')}/console/webhooks/{endpoint.id}"})
        log.warning("webhook endpoint %s disabled: %s", endpoint.id, endpoint.disabled_reason)
        return True
