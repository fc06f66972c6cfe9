"""The server's access log line (core.access_log): what uvicorn's own access formatter writes, colours aside."""

from __future__ import annotations

import logging

import pytest
from uvicorn.logging import AccessFormatter as UvicornAccessFormatter

from accountdesk.core.access_log import AccessFormatter

UVICORN = UvicornAccessFormatter('%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
                                 use_colors=False)


@pytest.mark.parametrize("status", [200, 201, 204, 302, 404, 422, 429, 500, 599])
@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING])
def test_the_line_is_uvicorns(status, level):
    record = logging.LogRecord("uvicorn.access", level, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("203.0.113.7:51234", "POST", "/api/v1/storefronts/shop/sessions?x=%C3%A9", "1.1",
                                status), None)
    assert AccessFormatter().format(record) == UVICORN.format(record)

