"""Who may do what in the approval pages: every route for every role, allowed and refused,
signed in with a password or through a trusted proxy's single sign-on, and no POST without
its session's CSRF token. The real app on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tests.web_world import (
    PASSWORD,
    Person,
    WebWorld,
    csrf_of,
    post_form,
    shared_fixtures,
    web_world,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def world(engine: Engine) -> Iterator[WebWorld]:
    yield from web_world(engine, shared_fixtures())


ROLES = ("anonymous", "staff", "checker", "governance", "admin")
# GET routes: who gets the page (200); everyone else signed in is refused (403) and the
# anonymous are sent to sign in (303 to /login).
PAGES = {
    "/queue": {"checker", "governance", "admin"},
    "/queue/count": {"checker", "governance", "admin"},
    "/items/{ref}": {"checker", "governance", "admin"},
    "/mine": {"staff", "checker", "governance", "admin"},
    "/governance/canaries": {"governance", "admin"},
    "/governance/audit": {"governance", "admin"},
    "/admin/users": {"admin"},
}
OPEN = ("/healthz", "/metrics", "/static/gatekeeper.css", "/static/gatekeeper.js")
# POST routes: who may act (anything but 403); the rest are refused with 403.
ACTIONS = {
    "/items/{ref}/approve": {"checker"},
    "/items/{ref}/return": {"checker"},
    "/items/{ref}/correct": {"checker"},
    "/mine/{ref}/withdraw": {"staff", "checker", "governance", "admin"},
    "/admin/users/{user}": {"admin"},
    "/logout": {"staff", "checker", "governance", "admin"},
}


def people(world: WebWorld) -> dict[str, Person | None]:
    return {
        "anonymous": None,
        "staff": world.sender,
        "checker": world.checker,
        "governance": world.governance,
        "admin": world.admin,
    }


def test_every_page_for_every_role_allowed_and_refused(world: WebWorld) -> None:
    ref = world.hold_lookalike(sender=world.colleague)
    wrong = []
    for role, person in people(world).items():
        client = world.client(person)
        for template, allowed in PAGES.items():
            path = template.format(ref=ref)
            response = client.get(path)
            expected = 200 if role in allowed else 303 if person is None else 403
            if response.status_code != expected:
                wrong.append((role, path, response.status_code, expected))
            if person is None and response.status_code == 303:
                assert response.headers["location"].startswith("/login?next=")
            if expected == 403:
                assert (
                    "This page needs" in response.text and "ask an administrator" in response.text
                )
        for path in OPEN:
            if client.get(path).status_code != 200:
                wrong.append((role, path, "not open"))
        login = client.get("/login")
        assert login.status_code == (200 if person is None else 303)  # signed in: on you go
        home = client.get("/")
        assert home.status_code == 303
        if person is None:
            assert home.headers["location"].startswith("/login")
        else:
            queue_roles = PAGES["/queue"]
            assert home.headers["location"] == ("/queue" if role in queue_roles else "/mine")
    assert wrong == []
    refused = world.audit("web.refused")
    assert {r.actor for r in refused} == {
        world.sender.email,
        world.checker.email,
        world.governance.email,
    }


def test_every_action_for_every_role_allowed_and_refused(world: WebWorld) -> None:
    wrong = []
    for role, person in people(world).items():
        client = world.client(person)
        token = csrf_of(client.get("/login" if person is None else "/mine").text)
        for template, allowed in ACTIONS.items():
            ref = world.hold_lookalike(sender=world.colleague)
            path = template.format(ref=ref, user=world.colleague.email)
            data = {
                "csrf": token,
                "note": "checked",
                "confirm": "0",
                "role": "staff",
                "active": "on",
            }
            response = client.post(path, data=data)
            if person is None:
                ok = response.status_code == 403
            elif role in allowed:
                ok = response.status_code != 403
            else:
                ok = response.status_code == 403 and "This page needs" in response.text
            if not ok:
                wrong.append((role, path, response.status_code))
            if role not in allowed:
                assert world.item(ref).state == "held"
            if template == "/logout" and person is not None:
                client = world.client(person)
                token = csrf_of(client.get("/mine").text)
    assert wrong == []


def test_a_post_without_its_sessions_csrf_token_is_refused_and_changes_nothing(
    world: WebWorld,
) -> None:
    ref = world.hold_lookalike()
    checker = world.client(world.checker)
    other = world.client(world.checker2)
    others_token = csrf_of(other.get("/queue").text)
    own_token = csrf_of(checker.get("/queue").text)
    decide = {"confirm": "0", "note": "looks fine"}
    for path in (f"/items/{ref}/approve", f"/items/{ref}/return", f"/items/{ref}/correct",
                 f"/mine/{ref}/withdraw", "/logout", f"/admin/users/{world.sender.email}"):  # fmt: skip
        for token in (None, "", "not-the-token", others_token):
            data = dict(decide) if token is None else {**decide, "csrf": token}
            response = checker.post(path, data=data)
            assert response.status_code == 403, (path, token)
            assert "This form has expired" in response.text
    # The right token, from another site's page (the browser says where the form came from):
    crossed = checker.post(
        f"/items/{ref}/approve",
        data={**decide, "csrf": own_token},
        headers={"Origin": "https://evil.example"},
    )
    assert crossed.status_code == 403
    assert world.item(ref).state == "held"
    assert world.outbound(ref) == []
    assert len(world.audit("web.csrf_refused")) == 6 * 4 + 1


def test_signing_in_with_a_password_and_out_again(world: WebWorld) -> None:
    client = world.client()
    wrong = post_form(
        client, "/login", {"email": world.checker.email, "password": "nope"}, page="/login"
    )
    assert wrong.status_code == 400 and "do not match an active account" in wrong.text
    right = post_form(
        client,
        "/login",
        {"email": world.checker.email.upper(), "password": PASSWORD, "next": "/items/ABC"},
        page="/login",
    )
    assert right.status_code == 303 and right.headers["location"] == "/items/ABC"
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie  # plain HTTP here; see the proxy test for HTTPS
    assert client.get("/queue").status_code == 200
    assert post_form(client, "/logout", {}, page="/queue").status_code == 303
    assert client.get("/queue").status_code == 303
    assert [e.actor for e in world.audit("web.login")] == [world.checker.email]
    assert len(world.audit("web.login_failed")) == 1 and world.audit("web.logout")


def test_sign_in_goes_back_only_to_a_page_of_this_site(world: WebWorld) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        client = world.client()
        response = post_form(
            client,
            "/login",
            {"email": world.checker.email, "password": PASSWORD, "next": target},
            page="/login",
        )
        assert response.status_code == 303
        assert not re.match(r"^(https?:)?//", response.headers["location"].replace("\\", "/"))


def test_repeated_failed_sign_ins_are_refused_for_a_while(world: WebWorld) -> None:
    client = world.client()
    for _ in range(10):
        post_form(client, "/login", {"email": world.checker.email, "password": "x"}, page="/login")
    response = post_form(
        client, "/login", {"email": world.checker.email, "password": PASSWORD}, page="/login"
    )
    assert response.status_code == 429 and "Wait 15 minutes" in response.text
    assert client.get("/queue").status_code == 303


def test_one_password_tried_on_many_accounts_is_refused_for_a_while(world: WebWorld) -> None:
    client = world.client()
    for number in range(10):
        guess = {"email": f"guess{number}@gatekeeper.example", "password": "Summer2025!"}
        post_form(client, "/login", guess, page="/login")
    response = post_form(
        client, "/login", {"email": world.checker.email, "password": PASSWORD}, page="/login"
    )
    assert response.status_code == 429 and "Wait 15 minutes" in response.text


def test_a_role_taken_away_takes_effect_at_once(world: WebWorld) -> None:
    checker = world.client(world.checker)
    assert checker.get("/queue").status_code == 200
    admin = world.client(world.admin)
    changed = post_form(
        admin,
        f"/admin/users/{world.checker.email}",
        {"role": "staff", "active": "on"},
        page="/admin/users",
    )
    assert changed.status_code == 303
    assert checker.get("/queue").status_code == 403
    post_form(admin, f"/admin/users/{world.checker.email}", {"role": "staff"}, page="/admin/users")
    assert checker.get("/mine").status_code == 303  # deactivated: signed out
    own = post_form(admin, f"/admin/users/{world.admin.email}", {"role": "staff", "active": "on"},
                    page="/admin/users")  # fmt: skip
    assert own.status_code == 400 and "cannot remove your own admin role" in own.text


def test_every_response_carries_the_security_headers(world: WebWorld) -> None:
    client = world.client(world.checker)
    for path in ("/queue", "/login", "/items/NOSUCHREF", "/healthz"):
        headers = client.get(path).headers
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy and "img-src 'self' data:" in policy
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["cache-control"] == "no-store"
    missing = client.get("/items/NOSUCHREF")
    assert missing.status_code == 404 and "There is no item with ref NOSUCHREF" in missing.text


def test_health_and_metrics(world: WebWorld) -> None:
    world.hold_lookalike()
    client = world.client()
    assert client.get("/healthz").json() == {"ok": True, "problems": []}
    metrics = client.get("/metrics").text
    assert "gatekeeper_held_items 1.0" in metrics
    assert "gatekeeper_web_requests_total" in metrics


@pytest.fixture
def sso_world(engine: Engine) -> Iterator[WebWorld]:
    yield from web_world(
        engine,
        shared_fixtures(),
        web_sso_header="X-Remote-User",
        web_trusted_proxies=("10.20.0.0/16",),
    )


def test_single_sign_on_from_the_trusted_proxy_only(sso_world: WebWorld) -> None:
    world = sso_world
    proxy = world.client(client=("10.20.0.5", 4000), base_url="https://gatekeeper.test")
    through = {"X-Remote-User": world.checker.email, "X-Forwarded-For": "192.0.2.44",
               "X-Forwarded-Proto": "https"}  # fmt: skip
    page = proxy.get("/queue", headers=through)
    assert page.status_code == 200 and world.checker.name in page.text
    cookie = page.headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie  # HTTPS at the proxy
    assert page.headers["strict-transport-security"]
    login = world.audit("web.login")
    assert [(e.actor, e.remote, e.details["via"]) for e in login] == [
        (world.checker.email, "192.0.2.44", "sso")
    ]
    # A decision through the proxy, with the session's token, is recorded from the real client:
    ref = world.hold_lookalike()
    shown = proxy.get(f"/items/{ref}", headers=through)
    returned = proxy.post(
        f"/items/{ref}/return",
        data={"csrf": csrf_of(shown.text), "note": "Use the record's address."},
        headers=through,
    )
    assert returned.status_code == 303, returned.text
    assert world.audit("held.return")[0].remote == "192.0.2.44"

    direct = world.client(client=("192.0.2.99", 5000))
    refused = direct.get("/queue", headers={"X-Remote-User": world.checker.email})
    assert refused.status_code == 403 and "did not come through" in refused.text
    assert [e.remote for e in world.audit("web.sso_refused")] == ["192.0.2.99"]
    stranger = proxy.get("/queue", headers={"X-Remote-User": "nobody@gatekeeper.example"})
    assert stranger.status_code == 403 and "not an active member of staff" in stranger.text
    # Without the header the password still works, from anywhere:
    assert direct.get("/login").status_code == 200
    signed = post_form(
        direct, "/login", {"email": world.governance.email, "password": PASSWORD}, page="/login"
    )
    assert signed.status_code == 303
