"""Section: what an Idempotency-Key adds to an account creation (issue 13: under 5 % more server CPU).

Per database, on a fresh database, one `accountdesk serve` process and one staff API token: `--requests`
POST /api/v1/accounts without a key and as many with a fresh key each, one client on one keep-alive connection,
in alternating blocks of 25 so that a busy neighbour on the machine weighs on both alike. The server's CPU
(user + system of its process, /proc/<pid>/stat) is read around every block. Then `--requests` replays of one
key (the stored answer, nothing created) show what a retry costs.

- **CPU ms / creation**: server CPU per request without and with a key; **added** is (with key ÷ without − 1) over
  all the blocks. The kernel counts a process's CPU in ticks of 10 ms, a tenth of a block's, so one block's ratio is
  only good to ±10 %: the sums over many blocks are the figure (run `--requests 2000` or more for a steady one). The
  median over the pairs of neighbouring blocks, which a busy neighbour's burst sways less, is shown beside it;
- **replay CPU ms**: server CPU of answering a repeated key from the table.

Run alone with `python -m bench --only idempotency`.
"""

from __future__ import annotations

import statistics
import uuid

import httpx

from bench.common import App, CpuWatch, Target, fresh_database, make_staff, print_table, running_app, sign_in
from bench.runner import Bench

NAME = "idempotency"
TITLE = "idempotency: server CPU an Idempotency-Key adds to an account creation"
BLOCK = 25
TARGET_ADDED = 0.05


def _block(app: App, client: httpx.Client, token: dict[str, str], count: int, *, keyed: bool,
           replay_key: str | None = None) -> float:
    """Server CPU seconds of `count` requests."""
    before = app.cpu_seconds()
    for _ in range(count):
        headers = dict(token)
        if replay_key:
            headers["Idempotency-Key"] = replay_key
        elif keyed:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        body = {"name": "Replayed Ltd" if replay_key else f"Bench {uuid.uuid4().hex[:12]} GmbH",
                "email": "orders@bench.example"}
        response = client.post("/api/v1/accounts", json=body, headers=headers)
        if response.status_code != 201:
            raise RuntimeError(f"account creation failed: {response.status_code} {response.text}")
    return app.cpu_seconds() - before


def measure(target: Target, bench: Bench) -> dict[str, float]:
    email = make_staff(target, 1)[0]
    blocks = max(1, bench.requests // BLOCK)
    with running_app(target) as app, httpx.Client(base_url=app.base_url, timeout=30) as client:
        token = {"Authorization": f"Bearer {sign_in(client, email).json()['access_token']}"}
        _block(app, client, token, BLOCK, keyed=False)  # warm-up: imports, caches, connections
        _block(app, client, token, BLOCK, keyed=True)
        plain: list[float] = []
        keyed: list[float] = []
        with CpuWatch() as machine:
            for _ in range(blocks):
                plain.append(_block(app, client, token, BLOCK, keyed=False))
                keyed.append(_block(app, client, token, BLOCK, keyed=True))
        replay_key = str(uuid.uuid4())
        _block(app, client, token, 1, keyed=True, replay_key=replay_key)
        replays = _block(app, client, token, blocks * BLOCK, keyed=True, replay_key=replay_key)
    count = blocks * BLOCK
    # medians: a neighbour's burst on the shared machine inflates a block or two, not the middle of them
    return {"plain_ms": 1000 * sum(plain) / count, "keyed_ms": 1000 * sum(keyed) / count,
            "added": sum(keyed) / sum(plain) - 1,
            "median": statistics.median(k / p - 1 for p, k in zip(plain, keyed, strict=True) if p),
            "replay_ms": 1000 * replays / count, "requests": count, "machine": machine.busy_cores,
            "steal": machine.steal_cores}


def run(bench: Bench) -> None:
    print(f"  {max(1, bench.requests // BLOCK) * BLOCK} account creations without and with a key, alternating "
          f"blocks of {BLOCK}, one client, one app process")
    rows = [("database", "CPU ms / creation", "with key", "added", "median of pairs", "replay CPU ms", "machine busy",
             "steal")]
    for kind in bench.databases:
        with fresh_database(kind, bench.pg_url) as target:
            m = measure(target, bench)
        added = m["added"]
        rows.append((kind, f"{m['plain_ms']:.2f}", f"{m['keyed_ms']:.2f}", f"{added:+.1%}", f"{m['median']:+.1%}",
                     f"{m['replay_ms']:.2f}",
                     f"{m['machine']:.2f}", f"{m['steal']:.2f}"))
        bench.report(NAME, kind, "key check added CPU", added * 100, "%",
                     f"{m['plain_ms']:.2f} -> {m['keyed_ms']:.2f} ms per creation over {m['requests']} each "
                     f"(median of pairs {m['median']:+.1%}); target < {TARGET_ADDED:.0%}: "
                     + ("met" if added < TARGET_ADDED else "MISSED"))
        bench.report(NAME, kind, "replay CPU", m["replay_ms"], "ms", "a repeated key answered from the table")
    print_table(rows)
