"""The outbox handler of "webhook" rows: sign with the Standard Webhooks library, POST once with a short time limit
and no redirects, log the attempt, and decide: delivered, retry later (per ACCOUNTDESK_WEBHOOK_RETRY_SECONDS), or
give up because the endpoint has failed for too long (it is disabled and its owner e-mailed).

A claimed batch (never two rows of one endpoint and subject) is sent concurrently over kept-alive connections, one
urllib3 connection pool per endpoint address, and its attempts are logged in the one transaction that finishes its
outbox rows. urllib3 rather than httpx: sending from threads, httpx cost 0.7–0.9 ms of CPU per request and its
asyncio client 1.6 ms (one at a time) to 3 ms (20 at once), urllib3 0.3–0.4 ms (bench/README.md)."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import urllib3
from sqlalchemy import bindparam, column, insert, select, table, update
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from accountdesk.core import audit, outbox
from accountdesk.core.audit import Actor
from accountdesk.core.db import Database, utcnow
from accountdesk.core.settings import Settings
from accountdesk.mail import service as mail
from accountdesk.webhooks import service
from accountdesk.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from accountdesk.webhooks.targets import Target, TargetRefused, pool_for, resolve

Pool = urllib3.HTTPConnectionPool

log = logging.getLogger("accountdesk.webhooks")
ENDPOINT_SECONDS = 1.0
MAX_ANSWER_BYTES = 64 * 1024  # read (and drop) at most this much of an answer, so the connection can be reused
USER_AGENT = "accountdesk-webhooks/1"
# the owner of an endpoint is a console user (a layer above): only their language is read, to write the mail in it
STAFF_USERS = table("staff_users", column("email"), column("language"))

SENDERS = 8  # threads sending a batch: more cost CPU per request (the GIL), fewer make a slow batch longer
DISABLED = "endpoint disabled or removed"


@dataclass(frozen=True)
class Signer:
    """An endpoint as deliveries need it: its URL and its secrets' keys, decoded once."""

    url: str
    enabled: bool
    keys: tuple[Webhook, ...]
    read_at: float

    def signature(self, message_id: str, at: datetime, body: str) -> str:
        """The webhook-signature header: one `v1,…` signature per valid secret, space separated."""
        return " ".join(key.sign(message_id, at, body) for key in self.keys)


@dataclass(frozen=True)
class Sending:
    """One claimed row: which delivery, to which endpoint, the exact body and its webhook-id."""

    row: int
    delivery_id: int
    endpoint_id: int
    message_id: str
    body: str


@dataclass(frozen=True)
class Outcome:
    status: int | None
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def refused(self) -> bool:
        return self.error.startswith("refused:")


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    waits = [float(part) for part in settings.webhook_retry_seconds.split(",")]
    return timedelta(seconds=waits[min(attempts, len(waits)) - 1])


class DeliveryHandler:
    """One per worker: connection pools kept alive across batches and threads that send a batch's requests at once."""

    def __init__(self, db: Database, settings: Settings, senders: int = SENDERS) -> None:
        self.db, self.settings = db, settings
        self._endpoints: dict[int, Signer] = {}
        self._pools: dict[tuple[str, str, int, str], Pool] = {}
        self.timeout = urllib3.Timeout(connect=settings.webhook_timeout_seconds,
                                       read=settings.webhook_timeout_seconds)
        self.senders, self.sender_count = ThreadPoolExecutor(senders, thread_name_prefix="webhook-send"), senders

    def deliver_batch(self, messages: list[outbox.Claimed]) -> outbox.Recorder:
        sendings = [Sending(m.id, int(m.payload["delivery_id"]), int(m.payload["endpoint_id"]),
                            m.payload["message_id"], m.payload["body"]) for m in messages]
        signers = self._signers({s.endpoint_id for s in sendings})
        refused = [s for s in sendings if s.endpoint_id not in signers or not signers[s.endpoint_id].enabled]
        going = [s for s in sendings if s not in refused]
        targets = {endpoint_id: self._target(signers[endpoint_id].url) for endpoint_id in {s.endpoint_id
                                                                                         for s in going}}
        pools = {i: self._pool(t) for i, t in targets.items() if isinstance(t, Target)}
        outcomes = list(self.senders.map(
            lambda s: self._post(s, signers[s.endpoint_id], targets[s.endpoint_id], pools.get(s.endpoint_id)), going))
        return lambda session: self._record(session, list(zip(going, outcomes, strict=True)), refused)

    def _signers(self, endpoint_ids: set[int]) -> dict[int, Signer]:
        """The endpoints' URLs and keys, read at most once a second per worker; a change reaches deliveries within
        that second."""
        now = time.monotonic()
        stale = [i for i in endpoint_ids if i not in self._endpoints or now - self._endpoints[i].read_at
                 >= ENDPOINT_SECONDS]
        if stale:
            with self.db.transaction() as session:
                found = {e.id: e for e in session.scalars(select(WebhookEndpoint)
                                                          .where(WebhookEndpoint.id.in_(stale)))}
                for endpoint_id in stale:
                    endpoint = found.get(endpoint_id)
                    if endpoint is None:
                        self._endpoints.pop(endpoint_id, None)
                        continue
                    keys = tuple(Webhook(secret) for secret in service.signing_secrets(endpoint))
                    self._endpoints[endpoint_id] = Signer(endpoint.url, endpoint.enabled, keys, now)
        return {i: self._endpoints[i] for i in endpoint_ids if i in self._endpoints}

    def _target(self, url: str) -> Target | TargetRefused:
        """The URL pinned to its checked address, resolved once per batch."""
        try:
            return resolve(url, self.settings)
        except TargetRefused as exc:
            return exc

    def _pool(self, target: Target) -> Pool:
        """The kept-alive connections to one checked address (the TLS server name is the URL's host)."""
        key = (target.scheme, target.address, target.port, target.host)
        if key not in self._pools:
            self._pools[key] = pool_for(target, self.timeout, maxsize=self.sender_count,
                                        headers={"user-agent": USER_AGENT})
        return self._pools[key]

    def _post(self, sending: Sending, signer: Signer, target: Target | TargetRefused, pool: Pool | None) -> Outcome:
        started = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - started) * 1000)

        if isinstance(target, TargetRefused) or pool is None:
            return Outcome(None, f"refused: {target}", 0)
        now = datetime.now(UTC)
        headers = {"content-type": "application/json", "host": target.host_header, "user-agent": USER_AGENT,
                   "webhook-id": sending.message_id, "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": signer.signature(sending.message_id, now, sending.body)}
        try:
            # The answer holds its connection until it is read (release_conn=False): released at once, another
            # sender could take the connection while this one still reads from it.
            answer = pool.urlopen("POST", target.path, body=sending.body.encode(), headers=headers, retries=False,
                                  redirect=False, preload_content=False, release_conn=False)
        except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ConnectTimeoutError) as exc:
            if not isinstance(exc, urllib3.exceptions.NewConnectionError):  # a refused connection is not slow
                return Outcome(None, f"timed out after {self.settings.webhook_timeout_seconds:g} s "
                               f"({type(exc).__name__})", took())
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:500], took())
        except urllib3.exceptions.HTTPError as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:500], took())
        try:
            # Read (and drop) the answer: read to its end, it gives its connection back to the pool by itself.
            answer.read(MAX_ANSWER_BYTES, decode_content=False)
        except urllib3.exceptions.HTTPError:
            pass  # the status is what counts
        finally:
            answer.close()  # closes the connection only if more than that was left unread (or reading failed)
            answer.release_conn()
        status = answer.status
        ok = 200 <= status < 300
        redirect = 300 <= status < 400 and "location" in answer.headers
        return Outcome(status, "" if ok else f"HTTP {status}" + (" (redirects are not followed)" if redirect else ""),
                       took())

    def _record(self, session: Session, sent: list[tuple[Sending, Outcome]],
                refused: list[Sending]) -> outbox.Outcomes:
        """Log every attempt and settle the deliveries: successes in two statements, failures one by one (rare)."""
        outcomes: outbox.Outcomes = {}
        kept = set(session.scalars(select(WebhookDelivery.id).where(
            WebhookDelivery.id.in_([s.delivery_id for s, _ in sent] + [s.delivery_id for s in refused]))))
        for sending in [s for s, _ in sent if s.delivery_id not in kept]:  # its endpoint was removed meanwhile
            outcomes[sending.row] = outbox.PermanentFailure(DISABLED)
        sent = [(s, o) for s, o in sent if s.delivery_id in kept]
        if sent:
            session.execute(insert(WebhookAttempt), [
                {"delivery_id": s.delivery_id, "attempted_at": utcnow(), "response_status": o.status,
                 "error": o.error[:2000], "duration_ms": o.duration_ms} for s, o in sent])
        delivered = [(s, o) for s, o in sent if o.ok]
        if delivered:
            table = WebhookDelivery.__table__
            session.execute(update(table).where(table.c.id == bindparam("delivery"))
                            .values(attempts=table.c.attempts + 1, status="delivered", delivered_at=utcnow(),
                                    response_status=bindparam("answer"), last_error=""),
                            [{"delivery": s.delivery_id, "answer": o.status} for s, o in delivered])
            session.execute(update(WebhookEndpoint).where(
                WebhookEndpoint.id.in_({s.endpoint_id for s, _ in delivered}),
                WebhookEndpoint.failing_since.is_not(None)).values(failing_since=None)
                .execution_options(synchronize_session=False))
            outcomes.update(dict.fromkeys((s.row for s, _ in delivered), None))
        answering = {s.endpoint_id for s, _ in delivered}
        for sending, outcome in sent:
            if not outcome.ok:
                outcomes[sending.row] = self._failed(session, sending, outcome, sending.endpoint_id in answering)
        for sending in refused:
            session.execute(update(WebhookDelivery).where(WebhookDelivery.id == sending.delivery_id)
                            .values(status="failed", last_error=DISABLED).execution_options(synchronize_session=False))
            outcomes[sending.row] = outbox.PermanentFailure(DISABLED)
        return outcomes

    def _failed(self, session: Session, sending: Sending, outcome: Outcome, answering: bool) -> Exception:
        """A failed attempt: retry later, or give up when the address is refused or the endpoint failed too long
        (not while it answers other deliveries of the batch) and is disabled, by this failure or an earlier one."""
        delivery = session.get(WebhookDelivery, sending.delivery_id)
        endpoint = session.get(WebhookEndpoint, sending.endpoint_id)
        if delivery is None or endpoint is None:
            return outbox.PermanentFailure(DISABLED)
        delivery.attempts += 1
        delivery.response_status, delivery.last_error = outcome.status, outcome.error[:2000]
        if outcome.refused or not endpoint.enabled or (
                not answering and self._failing_too_long(session, endpoint)):
            delivery.status = "failed"
            return outbox.PermanentFailure(outcome.error)
        return outbox.Retry(outcome.error, retry_delay(self.settings, delivery.attempts))

    def _failing_too_long(self, session: Session, endpoint: WebhookEndpoint) -> bool:
        now = utcnow()
        if endpoint.failing_since is None:
            endpoint.failing_since = now
        if now - endpoint.failing_since < timedelta(hours=self.settings.webhook_disable_after_hours):
            return False
        service.disable(session, endpoint, service.DISABLED_BY_FAILURES)
        audit.record(session, Actor.system(), "webhook_endpoint.disabled", subject_type="webhook_endpoint",
                     subject_id=endpoint.id, account_id=None,
                     changes={"enabled": [True, False], "disabled_reason": ["", service.DISABLED_BY_FAILURES]})
        if endpoint.owner_email:
            language = session.scalar(select(STAFF_USERS.c.language).where(
                STAFF_USERS.c.email == endpoint.owner_email.lower()))
            mail.send(session, "webhook_endpoint_disabled", endpoint.owner_email, language=language or "en", context={
                "name": endpoint.owner_email, "storefront_name": "", "account_name": "", "url": endpoint.url,
                "failing_since": endpoint.failing_since.isoformat(),
                "console_link": f"{self.settings.base_url.rstrip('/')}/console/webhooks/{endpoint.id}"})
        log.warning("webhook endpoint %s disabled: every delivery failed since %s", endpoint.id, endpoint.failing_since)
        return True
