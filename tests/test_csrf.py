"""CSRF: the page route class checks the form's token on every unsafe method, so no page module can forget it; the
routes outside the pages and the API that take unsafe methods are named here with their own protection."""

from __future__ import annotations

from sqlalchemy import func, select
from starlette.routing import Route

from accountdesk.core.headers import CSP_REPORT_PATH
from accountdesk.core.models import AuditEvent
from accountdesk.core.pages import SAFE_METHODS, PageRoute
from tests.page_world import app_routes, fill, page_world, sign_in_everywhere

# Neither a page nor the API (bearer tokens, JSON bodies): each has its own protection.
NOT_PAGES = {CSP_REPORT_PATH: "a JSON report any site may send by design; rate limited, it only writes a log line",
             "/s/{slug}/oidc/token": "OAuth token endpoint: reads no cookie; a client secret or a code with its PKCE "
                                     "verifier authenticates each call",
             "/s/{slug}/oidc/userinfo": "OpenID Connect userinfo: reads no cookie, only a bearer access token"}
REFUSED = "The form expired or came from another site."


def unsafe_routes(app) -> list[tuple[Route, str]]:
    """Routes (API routes are Starlette routes too; the token endpoint is a plain one) with an unsafe method."""
    return [(route, method) for route in app_routes(app) if isinstance(route, Route)
            for method in sorted((route.methods or set()) - SAFE_METHODS)]


def test_every_unsafe_route_is_a_page_the_api_or_a_named_exception(app):
    outside = sorted({route.path for route, _ in unsafe_routes(app)
                      if not isinstance(route, PageRoute) and not route.path.startswith("/api/")})
    assert outside == sorted(NOT_PAGES)


def test_every_form_post_of_a_page_is_refused_without_its_csrf_token(db, app, client):
    w = page_world(db)
    sign_in_everywhere(client, w)  # signed in, the forms would do their work if the token were not checked
    ids = {**w.ids(), "action": "deactivate", "address_id": 1, "message_id": 1, "method_id": 1}
    posts = [(route.path, method) for route, method in unsafe_routes(app) if isinstance(route, PageRoute)]
    assert len(posts) >= 50, posts
    with db.transaction() as session:
        history = session.scalar(select(func.count()).select_from(AuditEvent))
    for path, method in posts:
        url = fill(path, ids)
        for form in ({}, {"csrf_token": "x" * 64}):
            refused = client.request(method, url, data=form, follow_redirects=False)
            assert refused.status_code == 403 and REFUSED in refused.text, (method, url, form, refused.status_code)
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == history
