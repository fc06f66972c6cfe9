"""Storefront registration policy: staff read it, admins change it with validation and history."""

from __future__ import annotations

from sqlalchemy import select

from accountdesk.core import history
from accountdesk.core.languages import LANGUAGES
from accountdesk.core.models import AuditEvent
from accountdesk.storefronts.policy import DEFAULT_NOT_OFFERED, NEEDS_ANONYMOUS_ACCESS, NOT_A_RESELLER
from tests import factories as f

EVERY_LANGUAGE = {f"languages.{code}": "on" for code in LANGUAGES}  # the policy form's language boxes, ticked


def test_create_read_and_change_policy(db, client):
    admin = f.token(client, f.staff(db, "admin"))
    csr = f.token(client, f.staff(db, "csr"))
    created = client.post("/api/v1/storefronts", json={"slug": "b2b-eu", "name": "B2B Europe",
                                                       "registration_mode": "approval",
                                                       "staff_notification_cc": "Ops@Example.com; sales@example.com"},
                          headers=admin)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["staff_notification_cc"] == "ops@example.com, sales@example.com"
    assert body["account_number_prefix"] == "W" and body["password_min_length"] == 12
    assert body["inactivity_days"] == 90 and body["invoice_window_days"] == 365
    assert client.post("/api/v1/storefronts", json={"slug": "b2b-eu", "name": "Again"},
                       headers=admin).status_code == 409
    assert client.patch("/api/v1/storefronts/b2b-eu/policy", json={"self_registration": False},
                        headers=csr).status_code == 403
    changed = client.patch("/api/v1/storefronts/b2b-eu/policy",
                           json={"account_number_prefix": "EU", "erp_excluded_account_codes": "c1, c2 ,",
                                 "default_currency": "gbp"}, headers=admin)
    assert changed.status_code == 200
    assert changed.json()["erp_excluded_account_codes"] == "C1, C2" and changed.json()["default_currency"] == "GBP"
    assert client.get("/api/v1/storefronts/b2b-eu/policy", headers=csr).json()["account_number_prefix"] == "EU"
    with db.transaction() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "storefront.policy_changed")).all()
        assert event.changes["account_number_prefix"] == ["W", "EU"]


def test_bad_policy_is_refused_unchanged(db, client):
    admin = f.token(client, f.staff(db, "admin"))
    store = f.storefront(db)
    for body in ({"registration_mode": "anything"}, {"password_min_length": 4}, {"default_billing_day": 30},
                 {"staff_notification_to": "not an address"}, {"account_number_prefix": "w-1"},
                 {"password_min_length": 100, "password_max_length": 50}, {"unknown": True}):
        response = client.patch(f"/api/v1/storefronts/{store.slug}/policy", json=body, headers=admin)
        assert response.status_code == 422, body
    too_long = client.patch(f"/api/v1/storefronts/{store.slug}/policy", json={"password_min_length": 200},
                            headers=admin)
    assert too_long.status_code == 422
    assert client.get(f"/api/v1/storefronts/{store.slug}/policy", headers=admin).json()["password_min_length"] == 12
    assert client.patch("/api/v1/storefronts/nope/policy", json={}, headers=admin).status_code == 404


def test_console_policy_page_roles_and_csrf(db, client):
    from tests.test_console_pages import post, sign_in  # noqa: PLC0415

    store = f.storefront(db)
    sign_in(client, f.staff(db, "csr"))
    shown = client.get(f"/console/storefronts/{store.slug}")
    assert shown.status_code == 200 and "Only administrators change the policy." in shown.text
    assert post(client, f"/console/storefronts/{store.slug}", {"name": "x"}).status_code == 403
    assert client.post(f"/console/storefronts/{store.slug}", data={"name": "x"}).status_code == 403  # no CSRF
    sign_in(client, f.staff(db, "admin"))
    refused = post(client, f"/console/storefronts/{store.slug}", {"name": store.name, "password_min_length": "3"})
    assert refused.status_code == 422 and "Enter 8 or more." in refused.text
    assert client.get(f"/api/v1/storefronts/{store.slug}").json()["password_policy"]["min_length"] == 12
    saved = post(client, f"/console/storefronts/{store.slug}", {"name": "Renamed", "registration_mode": "approval",
                                                                **EVERY_LANGUAGE})
    assert saved.status_code == 303
    assert client.get(f"/console/storefronts/{store.slug}").text.count("Renamed") >= 1


def test_self_registration_needs_anonymous_access(db, client):
    admin = f.token(client, f.staff(db, "admin"))
    store = f.storefront(db)
    policy = f"/api/v1/storefronts/{store.slug}/policy"
    closing = client.patch(policy, json={"anonymous_access": False}, headers=admin)
    assert closing.status_code == 422
    assert closing.json()["error"]["fields"] == {"anonymous_access": NEEDS_ANONYMOUS_ACCESS}
    closed = client.patch(policy, json={"anonymous_access": False, "self_registration": False}, headers=admin)
    assert closed.status_code == 200 and closed.json()["anonymous_access"] is False
    reopening = client.patch(policy, json={"self_registration": True}, headers=admin)
    assert reopening.json()["error"]["fields"] == {"self_registration": NEEDS_ANONYMOUS_ACCESS}
    created = client.post("/api/v1/storefronts", json={"slug": "private", "name": "Private", "anonymous_access": False},
                          headers=admin)
    assert created.status_code == 422 and set(created.json()["error"]["fields"]) == {"self_registration"}
    assert client.post("/api/v1/storefronts", json={"slug": "private", "name": "Private", "anonymous_access": False,
                                                    "self_registration": False}, headers=admin).status_code == 201
    with db.transaction() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "storefront.policy_changed")).all()
        assert event.changes == {"anonymous_access": [True, False], "self_registration": [True, False]}


def test_console_form_refuses_self_registration_without_anonymous_access(db, client):
    from tests.test_console_pages import error_beside, post, sign_in  # noqa: PLC0415

    store = f.storefront(db)
    sign_in(client, f.staff(db, "admin"))
    url = f"/console/storefronts/{store.slug}"
    shown = client.get(url).text
    assert "Sign in at once after an open registration" in shown and 'name="sign_in_after_registration"' in shown
    refused = post(client, url, {"name": store.name, "self_registration": "on", "sign_in_after_registration": "on",
                                 **EVERY_LANGUAGE})
    assert refused.status_code == 422
    assert error_beside(refused.text, "f-anonymous-access") == NEEDS_ANONYMOUS_ACCESS
    assert client.get(f"/api/v1/storefronts/{store.slug}").json()["self_registration"] is True  # unchanged
    saved = post(client, url, {"name": store.name, "anonymous_access": "on", "self_registration": "on",
                               "sign_in_after_registration": "on", **EVERY_LANGUAGE})
    assert saved.status_code == 303
    with db.transaction() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "storefront.policy_changed")).all()
        assert event.changes["sign_in_after_registration"] == [False, True]


def test_a_resellers_storefront_belongs_to_a_reseller_account(db, client):
    admin = f.token(client, f.staff(db, "admin"))
    reseller, buyer = f.account(db, kind="reseller"), f.account(db)
    for refused in (buyer.id, 999_999):  # a customer account, an account that does not exist
        answer = client.post("/api/v1/storefronts", json={"slug": f"shop-{refused}", "name": "Shop",
                                                          "reseller_account_id": refused}, headers=admin)
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["fields"] == {"reseller_account_id": NOT_A_RESELLER}
    assert client.get("/api/v1/storefronts", headers=admin).json() == []  # nothing was made
    made = client.post("/api/v1/storefronts", json={"slug": "partner", "name": "Partner shop",
                                                    "reseller_account_id": reseller.id}, headers=admin)
    assert made.status_code == 201 and made.json()["reseller_account_id"] == reseller.id


def test_languages_offered_are_chosen_validated_and_recorded(db, client):
    admin = f.token(client, f.staff(db, "admin"))
    made = client.post("/api/v1/storefronts", json={"slug": "shop-every", "name": "Every language"}, headers=admin)
    assert made.status_code == 201 and made.json()["languages"] == ["en", "fr", "de"]  # all, unless chosen
    made = client.post("/api/v1/storefronts", json={"slug": "shop-de", "name": "Deutsch zuerst",
                                                    "default_language": "de", "languages": ["de", "en", "de"]},
                       headers=admin)
    assert made.status_code == 201 and made.json()["languages"] == ["en", "de"]  # the product's order, once each
    assert client.get("/api/v1/storefronts/shop-de").json()["languages"] == ["en", "de"]  # the public policy too

    policy = "/api/v1/storefronts/shop-de/policy"
    unknown = client.patch(policy, json={"languages": ["en", "xx"]}, headers=admin)
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "validation_failed"
    assert list(unknown.json()["error"]["fields"]) == ["languages.1"]
    for body, field in (({"languages": ["en", "fr"]}, "languages"), ({"default_language": "fr"}, "default_language"),
                        ({"languages": []}, "languages"), ({"languages": ["fr"], "default_language": "en"},
                                                            "languages")):
        refused = client.patch(policy, json=body, headers=admin)
        assert refused.status_code == 422, body
        assert refused.json()["error"]["code"] == "default_language_not_offered"
        assert refused.json()["error"]["fields"] == {field: str(DEFAULT_NOT_OFFERED)}
    assert client.post("/api/v1/storefronts", json={"slug": "shop-fr", "name": "Fr", "default_language": "fr",
                                                    "languages": ["en"]}, headers=admin).status_code == 422
    assert client.get(policy, headers=admin).json()["languages"] == ["en", "de"]  # unchanged

    changed = client.patch(policy, json={"languages": ["fr", "de"], "default_language": "fr"}, headers=admin)
    assert changed.status_code == 200 and changed.json()["languages"] == ["fr", "de"]
    with db.transaction() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "storefront.policy_changed")).all()
        assert event.changes == {"languages": [["en", "de"], ["fr", "de"]], "default_language": ["de", "fr"]}
    assert history.field_label("languages") == "Languages offered"
    assert history.value_text("languages", ["fr", "de"]) == "Français, Deutsch"

    schema = client.get("/openapi.json").json()["components"]["schemas"]["PolicyFields"]["properties"]["languages"]
    assert schema["anyOf"][0]["items"]["enum"] == ["en", "fr", "de"] and "default_language" in schema["description"]


def test_console_policy_form_ticks_the_languages_offered(db, client):
    from tests.test_console_pages import error_beside, post, sign_in  # noqa: PLC0415

    store = f.storefront(db, default_language="de")
    sign_in(client, f.staff(db, "admin"))
    url = f"/console/storefronts/{store.slug}"
    shown = client.get(url).text
    assert all(f'name="languages.{code}" value="on" checked' in shown for code in LANGUAGES)
    refused = post(client, url, {"name": store.name, "languages.en": "on", "languages.fr": "on"})
    assert refused.status_code == 422
    assert error_beside(refused.text, "f-languages") == DEFAULT_NOT_OFFERED
    assert 'name="languages.de" value="on">' in refused.text  # as sent: not ticked
    saved = post(client, url, {"name": store.name, "languages.en": "on", "languages.de": "on"})
    assert saved.status_code == 303
    assert client.get(f"/api/v1/storefronts/{store.slug}").json()["languages"] == ["en", "de"]
    with db.transaction() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "storefront.policy_changed")).all()
        assert event.changes["languages"] == [["en", "fr", "de"], ["en", "de"]]
    record = client.get(url).text
    assert 'name="languages.fr" value="on">' in record and 'name="languages.de" value="on" checked' in record


def test_the_sign_in_text_speaks_the_pages_language(db, client):
    from tests.test_console_pages import post, sign_in  # noqa: PLC0415

    store = f.storefront(db, sign_in_text="Welcome back.")
    admin = f.token(client, f.staff(db, "admin"))
    policy = f"/api/v1/storefronts/{store.slug}/policy"
    refused = client.patch(policy, json={"sign_in_text_translations": {"xx": "?"}}, headers=admin)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "validation_failed"
    too_long = client.patch(policy, json={"sign_in_text_translations": {"fr": "x" * 2001}}, headers=admin)
    assert too_long.status_code == 422
    nul = client.patch(policy, json={"sign_in_text_translations": {"fr": "a\u0000b"}}, headers=admin)
    assert nul.status_code == 422 and nul.json()["error"]["code"] == "invalid_text"
    two_lines = client.patch(policy, json={"sign_in_text_translations": {"fr": "Bonjour.\nConnectez-vous."}},
                             headers=admin)  # may span lines, as the default-language text may
    assert two_lines.status_code == 200, two_lines.text
    changed = client.patch(policy, json={"sign_in_text_translations": {"de": " Willkommen zurück. ", "fr": ""}},
                           headers=admin)
    assert changed.status_code == 200 and changed.json()["sign_in_text_translations"] == {"de": "Willkommen zurück."}
    sign_in_page = f"/s/{store.slug}/sign-in"
    assert "Willkommen zurück." in client.get(sign_in_page, headers={"Accept-Language": "de"}).text
    assert "Welcome back." in client.get(sign_in_page, headers={"Accept-Language": "fr"}).text  # none in French
    assert client.get(f"/api/v1/storefronts/{store.slug}").json()["sign_in_text_translations"] == {
        "de": "Willkommen zurück."}

    sign_in(client, f.staff(db, "admin"))
    saved = post(client, f"/console/storefronts/{store.slug}", {
        "name": store.name, "sign_in_text": "Welcome back.", **EVERY_LANGUAGE,
        "sign_in_text_translations.fr": "Bon retour.", "sign_in_text_translations.de": "Willkommen zurück."})
    assert saved.status_code == 303
    assert "Bon retour." in client.get(sign_in_page, headers={"Accept-Language": "fr"}).text
    with db.transaction() as session:
        events = session.scalars(select(AuditEvent.changes).order_by(AuditEvent.id)
                                 .where(AuditEvent.action == "storefront.policy_changed"))
        last = list(events)[-1]["sign_in_text_translations"][1]
    assert history.value_text("sign_in_text_translations", last) == "Français: Bon retour.; Deutsch: Willkommen zurück."
