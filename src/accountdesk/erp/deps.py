"""The process's ERP gateway for request handlers: `erp: Erp` in a route's signature.

Built once per app from its settings (`gateway_from_settings`) and kept on `app.state.erp`, so the SAP adapter's
session and the read cache are shared by every request. Tests and the demo may set `app.state.erp` themselves.
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import Depends, Request

from accountdesk.erp.gateway import ErpGateway, gateway_from_settings

_lock = threading.Lock()


def erp_gateway(request: Request) -> ErpGateway:
    state = request.app.state
    gateway = getattr(state, "erp", None)
    if gateway is None:
        with _lock:
            gateway = getattr(state, "erp", None)
            if gateway is None:
                gateway = state.erp = gateway_from_settings(state.settings)
    return gateway


async def _gateway(request: Request) -> ErpGateway:
    # async: the gateway is built without I/O, so asking for it costs a request no trip to the thread pool
    return erp_gateway(request)


Erp = Annotated[ErpGateway, Depends(_gateway)]
