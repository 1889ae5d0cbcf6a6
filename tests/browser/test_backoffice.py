"""The back-office panel in a real Chromium against the real server and Valkey (issue #8).

A same-day pickup waits for its card: the counter panel's call-next passes over it and its status
page says the card is being prepared; a back-office user claims and finishes the preparation on the
panel; the visitor is called in their original place; after the counter finishes, the
post-issuance task appears on the panel and is done there. With two panels, a task claimed on one
is no longer claimable on the other, and a claim that loses the race says so plainly; a double
press takes one task and a lost answer is resent with the same Idempotency-Key. Booked cards come
by deadline, a branch's card with where and when it leaves; after closing time the panel says what
is carried over; it comes back by itself after a server restart. The panel is axe-clean (desktop
and phone) and speaks the catalogs' other languages.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import expect

from queue_server.config import Config, load_config
from queue_server.web.app import init_app
from queue_server.web.keys import CLOCK, CONFIG

from ..conftest import PASSWORD, TESTS, Api
from .conftest import SHUTDOWN_SECONDS, LiveServer, MakeUser, OpenPage, save_screenshot, start_server
from .test_display_counter import RECOVERY_MS, open_panel, press
from .test_kiosk import text
from .test_status_congestion import PHONE, open_status

pytestmark = pytest.mark.browser

DESK = (1366, 900)


@pytest.fixture
def server_config(tmp_path: Path) -> Config:
    """The test office whose pickups need their card prepared (and post-issuance work after)."""
    config = load_config(TESTS / "backoffice.toml")
    return dataclasses.replace(config, server=dataclasses.replace(config.server, data_dir=tmp_path))


async def sign_in(page: Any, username: str) -> Any:
    """Sign in through the panel's form and wait for the first work list."""
    await page.fill("#sign-in-form [name=username]", username)
    await page.fill("#sign-in-form [name=password]", PASSWORD)
    await page.click("#sign-in-form button[type=submit]")
    await expect(page.locator("body")).to_have_attribute("data-live", "ready")
    return page


async def open_backoffice(open_page: OpenPage, username: str = "staff", *, query: str = "",
                          viewport: tuple[int, int] = DESK) -> Any:
    """The back-office panel of the main office, signed in as ``username``, its work list on screen."""
    return await sign_in(await open_page(f"/backoffice/main{query}", viewport=viewport), username)


def task_row(page: Any, number: str) -> Any:
    """The work list's row of the task of ticket ``number``."""
    return page.locator(f"#work tr.bo-task[data-number='{number}']")


async def test_a_pickup_waits_for_its_card_is_prepared_on_the_panel_called_in_its_place_and_post_processed(
        open_page: OpenPage, web_user: MakeUser) -> None:
    visitor = web_user()
    first = await visitor.issue("pickup")
    second = await visitor.issue("pickup")
    walk_in = (await visitor.issue("application"))["ticket"]["number"]
    held = [first["ticket"]["number"], second["ticket"]["number"]]

    # The visitor's phone: the card is being prepared.
    phone = await open_status(open_page, first["token"])
    await expect(phone.locator("#state")).to_have_text(text("ja", "status.card_preparing"))

    # The counter sees both cards in preparation; call-next passes over them to the walk-in behind.
    counter = await open_panel(open_page, counter="1")
    for number in held:
        await expect(counter.locator(f"#waiting tr[data-number='{number}'] .cp-card-not-ready")).to_have_text(
            text("ja", "counter.card_not_ready"))
    await press(counter, "n")
    await expect(counter.locator("#current-number")).to_have_text(walk_in)
    await press(counter, "s")
    await press(counter, "f")
    await expect(counter.locator("#current-none")).to_be_visible()

    # The back office: both preparations, for visitors waiting now, in their order in line.
    panel = await open_backoffice(open_page)
    rows = panel.locator("#work tr.bo-task")
    await expect(rows).to_have_count(2)
    for i, number in enumerate(held):
        await expect(rows.nth(i)).to_have_attribute("data-number", number)
        await expect(rows.nth(i)).to_have_attribute("data-group", "visitor_waiting")
    await expect(panel.locator("#backlog-waiting")).to_contain_text(text("ja", "backoffice.count", n=2))

    # The second visitor's card first (its row's button), then N takes the next in order: the first's.
    await task_row(panel, held[1]).get_by_role("button").click()
    await expect(panel.locator("#mine-subject")).to_have_text(text("ja", "backoffice.ticket", number=held[1]))
    await expect(panel.locator("#people")).to_have_text(text("ja", "backoffice.people_now", n=1) + " "
                                                        + text("ja", "backoffice.people_planned", n=2))
    await press(panel, "f")
    await expect(task_row(panel, held[1])).to_have_count(0)
    await press(panel, "n")
    await expect(panel.locator("#mine-subject")).to_have_text(text("ja", "backoffice.ticket", number=held[0]))
    await expect(panel.locator("#message")).to_have_text(
        text("ja", "backoffice.done_claimed", task=text("ja", "backoffice.ticket", number=held[0])))
    await press(panel, "f")
    await expect(panel.locator("#mine-none")).to_be_visible()
    await expect(rows).to_have_count(0)
    await expect(phone.locator("#state")).to_have_text(text("ja", "status.card_ready"))

    # Ready, the first visitor is called in their original place: before the second, whose card was first.
    await expect(counter.locator(f"#waiting tr[data-number='{held[0]}'] .cp-card-not-ready")).to_have_count(0)
    await press(counter, "n")
    await expect(counter.locator("#current-number")).to_have_text(held[0])
    await expect(phone.locator("#state")).to_have_text(text("ja", "status.state_called"))
    await press(counter, "s")
    await expect(phone.locator("#state")).to_have_text(text("ja", "status.state_serving"))
    await press(counter, "f")
    await expect(phone.locator("#state")).to_have_text(text("ja", "status.state_done"))

    # After the counter, the post-issuance task: on the panel, and done there.
    post = task_row(panel, held[0])
    await expect(post).to_have_attribute("data-group", "post")
    await expect(post).to_contain_text(text("ja", "backoffice.kind_post"))
    await expect(panel.locator("#backlog-post")).to_have_text(text("ja", "backoffice.backlog_time", n=1, minutes=5))
    await press(panel, "n")
    await expect(panel.locator("#mine-kind")).to_have_text(text("ja", "backoffice.kind_post"))
    await press(panel, "f")
    await expect(rows).to_have_count(0)
    await expect(panel.locator("#work-none")).to_be_visible()
    await expect(panel.locator("#backlog-post")).to_have_text(text("ja", "backoffice.count", n=0))


async def test_a_task_claimed_on_one_panel_is_no_longer_claimable_on_the_other(
        open_page: OpenPage, web_user: MakeUser) -> None:
    number = (await web_user().issue("pickup"))["ticket"]["number"]
    one = await open_backoffice(open_page, "staff")
    other = await open_backoffice(open_page, "boss")
    for page in (one, other):
        await expect(task_row(page, number).get_by_role("button")).to_be_enabled()

    await press(one, "n")
    await expect(task_row(one, number).locator(".level")).to_have_text(text("ja", "backoffice.state_mine"))
    await expect(task_row(other, number).get_by_role("button")).to_have_count(0)
    await expect(task_row(other, number).locator(".level")).to_have_text(text("ja", "backoffice.state_claimed"))
    await expect(other.locator("button[data-key='n']")).to_be_disabled()   # nothing left to take
    await expect(other.locator("#people")).to_contain_text(text("ja", "backoffice.people_now", n=1))


async def test_a_claim_that_loses_the_race_says_so_and_shows_the_list_as_it_is(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    number = (await web_user().issue("pickup"))["ticket"]["number"]
    # The other panel's live updates are held back, so it still offers the task when it presses.
    other = await open_page("/backoffice/main", viewport=DESK, wait=False)
    held: list[Any] = []
    frozen = [False]

    async def route(ws: Any) -> None:
        server = ws.connect_to_server()
        ws.on_message(server.send)
        server.on_message(lambda message: held.append(message) if frozen[0] else ws.send(message))

    await other.route_web_socket("**/api/ws", route)
    await other.goto(live_server.url("/backoffice/main"))
    await sign_in(other, "boss")
    claim = task_row(other, number).get_by_role("button")
    await expect(claim).to_be_enabled()
    frozen[0] = True

    staff = web_user()
    await staff.sign_in("staff")
    status, body = await staff.post("/api/offices/main/tasks/claim-next")
    assert status == 200 and body["task"]["number"] == number, body

    await claim.click()   # too late: the server gave it to staff
    await expect(other.locator("#message")).to_have_text(text("ja", "backoffice.conflict_claim"))
    await expect(other.locator("#message")).to_have_attribute("data-kind", "error")
    await expect(task_row(other, number).locator(".level")).to_have_text(text("ja", "backoffice.state_claimed"))
    await expect(other.locator("#mine-none")).to_be_visible()


async def test_a_double_press_takes_one_task(open_page: OpenPage, web_user: MakeUser) -> None:
    visitor = web_user()
    numbers = [(await visitor.issue("pickup"))["ticket"]["number"] for _ in range(2)]
    panel = await open_backoffice(open_page)
    await expect(panel.locator("#work tr.bo-task")).to_have_count(2)
    await panel.locator("button[data-key='n']").dblclick()
    await expect(panel.locator("#mine-subject")).to_have_text(text("ja", "backoffice.ticket", number=numbers[0]))
    await expect(panel.locator("#message")).to_have_attribute("data-kind", "info")
    await expect(task_row(panel, numbers[1]).locator(".level")).to_have_count(0)   # still open
    staff = web_user()
    await staff.sign_in("staff")
    status, work = await staff.get("/api/offices/main/tasks")
    assert status == 200 and [t["state"] for t in work["tasks"]] == ["claimed", "open"], work
    # One task in hand at a time: N and the rows' buttons wait until it is finished or given back.
    await expect(panel.locator("button[data-key='n']")).to_be_disabled()
    await expect(task_row(panel, numbers[1]).get_by_role("button")).to_be_disabled()
    # B gives it back: it is open again, first in line.
    await press(panel, "b")
    await expect(panel.locator("#mine-none")).to_be_visible()
    await expect(task_row(panel, numbers[0]).get_by_role("button")).to_be_enabled()


@pytest.mark.screenshots
async def test_the_panel_is_axe_clean_on_a_desk_and_on_a_phone(open_page: OpenPage, web_user: MakeUser) -> None:
    visitor = web_user()
    numbers = [(await visitor.issue("pickup"))["ticket"]["number"] for _ in range(3)]
    page = await open_page("/backoffice/main", viewport=DESK)
    await expect(page.locator("#sign-in")).to_be_visible()
    await assert_axe_clean(page, "sign-in")
    await sign_in(page, "staff")
    await press(page, "n")
    await expect(page.locator("#mine-subject")).to_have_text(text("ja", "backoffice.ticket", number=numbers[0]))
    await expect(page.locator("#work tr.bo-task")).to_have_count(3)
    await assert_axe_clean(page, "panel")
    await save_screenshot(page, "backoffice-panel")

    phone = await open_backoffice(open_page, "boss", viewport=PHONE)
    await expect(phone.locator("#work tr.bo-task")).to_have_count(3)
    await assert_axe_clean(phone, "panel on a phone")
    # Nothing wider than the phone: the columns stack.
    assert await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


async def assert_axe_clean(page: Any, what: str) -> None:
    """No axe-core violations on the page as it is now."""
    results = await Axe().run(page)
    assert results.violations_count == 0, f"{what}:\n{results.generate_report()}"


async def test_the_panel_speaks_the_catalogs_languages(open_page: OpenPage, web_user: MakeUser) -> None:
    number = (await web_user().issue("pickup"))["ticket"]["number"]
    page = await open_backoffice(open_page, query="?lang=en")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("#work-heading")).to_contain_text(text("en", "backoffice.work_list"))
    await expect(task_row(page, number)).to_contain_text(text("en", "backoffice.kind_prepare"))
    await expect(page.locator("#work .bo-group th")).to_have_text(text("en", "backoffice.group_visitor_waiting"))


async def test_the_panel_follows_task_events_without_subscribing_again(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    """The view comes whole with each change; its events (several offices' sequences) are news, not gaps."""
    page = await open_page("/backoffice/main", viewport=DESK, wait=False)
    subscribes: list[str] = []
    page.on("websocket", lambda ws: ws.on(
        "framesent", lambda frame: subscribes.append(frame) if '"subscribe"' in str(frame) else None))
    await page.goto(live_server.url("/backoffice/main"))
    await sign_in(page, "staff")
    visitor = web_user()
    numbers = [(await visitor.issue("pickup"))["ticket"]["number"] for _ in range(3)]
    await expect(page.locator("#work tr.bo-task")).to_have_count(3)
    await press(page, "n")
    await press(page, "f")
    await expect(page.locator("#work tr.bo-task")).to_have_count(2)
    await expect(task_row(page, numbers[0])).to_have_count(0)
    assert len(subscribes) == 1, subscribes


async def serve_a_pickup(staff: Api, visitor: Api) -> str:
    """A pickup whose card is prepared, then served at counter 2: its post-issuance task is open."""
    number: str = (await visitor.issue("pickup"))["ticket"]["number"]
    status, body = await staff.post("/api/offices/main/tasks/claim-next")
    assert status == 200, body
    status, body = await staff.post(f"/api/offices/main/tasks/{body['task']['id']}/finish")
    assert status == 200, body
    for action in ("open", "call-next", "start", "finish"):
        status, body = await staff.counter("2", action)
        assert status == 200, (action, body)
    return number


async def test_after_closing_time_the_panel_says_what_is_carried_over(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    # Ten minutes after the closing time of the first opening day whose closing is still to come (the
    # office clock only moves forward), hours before midnight.
    clock = live_server.app[CLOCK]
    hours = live_server.app[CONFIG].offices["main"].hours
    day = clock.now().date()
    while True:
        closing = hours.closing_time(dt.datetime.combine(day, dt.time(12), clock.zone))
        if closing is not None and closing + dt.timedelta(minutes=10) > clock.now():
            break
        day += dt.timedelta(days=1)
    target = closing + dt.timedelta(minutes=10)
    clock.offset_ms = int(target.timestamp() * 1000) - time.time_ns() // 1_000_000

    staff, visitor = web_user(), web_user()
    await staff.sign_in("staff")
    done = await serve_a_pickup(staff, visitor)
    waiting = (await visitor.issue("pickup"))["ticket"]["number"]   # received in hours: served today
    panel = await open_backoffice(open_page)
    await expect(task_row(panel, done)).to_have_attribute("data-group", "post")
    await expect(task_row(panel, waiting)).to_have_attribute("data-group", "visitor_waiting")
    await expect(panel.locator("#carried-over")).to_have_text(text("ja", "backoffice.carried_over", prepare=0, post=1))


async def test_the_panel_comes_back_by_itself_after_a_server_restart(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser, server_config: Config, valkey_url: str,
        key_prefix: str, aiohttp_server: Callable[..., Awaitable[TestServer]]) -> None:
    visitor = web_user()
    before = (await visitor.issue("pickup"))["ticket"]["number"]
    panel = await open_backoffice(open_page)
    await expect(task_row(panel, before).get_by_role("button")).to_be_enabled()
    await panel.evaluate("window.sameDocument = true")

    port = live_server.server.port
    await live_server.server.close()
    await expect(panel.locator("#offline-sign")).to_be_visible()

    # While this server is down, the back office goes on through another one on the same Valkey.
    other = await start_server(aiohttp_server, server_config, valkey_url, key_prefix)
    async with ClientSession(base_url=other.url("/"), cookie_jar=CookieJar(unsafe=True)) as session:
        api = Api(session)
        await api.sign_in("boss")
        status, body = await api.post("/api/offices/main/tasks/claim-next")
        assert status == 200 and body["task"]["number"] == before, body
        during = (await api.issue("pickup"))["ticket"]["number"]
    await other.server.close()

    await aiohttp_server(init_app(server_config, redis_url=valkey_url, key_prefix=key_prefix), port=port,
                         shutdown_timeout=SHUTDOWN_SECONDS)
    await expect(task_row(panel, during).get_by_role("button")).to_be_enabled(timeout=RECOVERY_MS)
    await expect(task_row(panel, before).locator(".level")).to_have_text(text("ja", "backoffice.state_claimed"))
    await expect(panel.locator("#offline-sign")).to_be_hidden()
    assert await panel.evaluate("window.sameDocument") is True, "the page was reloaded"
    # And it acts on the new server: the session lives in Valkey.
    await press(panel, "n")
    await expect(panel.locator("#mine-subject")).to_have_text(text("ja", "backoffice.ticket", number=during))


async def test_booked_cards_are_listed_by_deadline_and_a_branch_card_with_where_and_when_it_leaves(
        live_server: LiveServer, open_page: OpenPage, web_user: MakeUser) -> None:
    clock = live_server.app[CLOCK]
    monday_10 = dt.datetime(2026, 12, 7, 10, 0, tzinfo=clock.zone)
    clock.offset_ms = int(monday_10.timestamp() * 1000) - time.time_ns() // 1_000_000
    visitor = web_user()
    status, own = await visitor.post("/api/offices/main/bookings", {"procedure": "pickup", "day": "20261208",
                                                                     "slot": "10:00", "reference": "A-12345"})
    assert status == 201, own
    status, branch = await visitor.post("/api/offices/branch/bookings",
                                        {"procedure": "pickup", "day": "20261208", "slot": "09:00"})
    assert status == 201, branch
    staff = web_user()
    await staff.sign_in("staff")
    status, work = await staff.get("/api/offices/main/tasks")
    assert status == 200, work
    bookings = {task["office"]: task["booking"] for task in work["tasks"]}   # ids: staff only, never public

    panel = await open_backoffice(open_page)
    rows = panel.locator("#work tr.bo-task")
    await expect(rows).to_have_count(2)
    # The branch's card first: it must leave today, by main's closing time; then main's own booking.
    sent, booked = rows.nth(0), rows.nth(1)
    await expect(sent).to_have_attribute("data-group", "send")
    await expect(sent).to_have_attribute("data-booking", bookings["branch"])
    await expect(sent).to_contain_text(text("ja", "backoffice.kind_send", office="テスト市 支所"))
    await expect(sent).to_contain_text(text("ja", "backoffice.leave_day", day="12/7"))
    await expect(sent).to_contain_text(
        text("ja", "backoffice.due_at", time="17:15", left=text("ja", "backoffice.due_in_hours", n=7)))
    await expect(booked).to_have_attribute("data-group", "due")
    await expect(booked).to_contain_text(text("ja", "backoffice.booking_id", id=bookings["main"]))
    await expect(booked).to_contain_text(text("ja", "backoffice.reference", reference="A-12345"))
    await expect(booked).to_contain_text(
        text("ja", "backoffice.due_at", time="2026/12/8 09:30", left=text("ja", "backoffice.due_in_hours", n=23)))
    for part in ("today", "tomorrow", "send"):
        await expect(panel.locator(f"#backlog-{part}")).to_have_text(text("ja", "backoffice.backlog_time", n=1, minutes=8))
    await expect(panel.locator("#work .bo-group th")).to_have_text(
        [text("ja", "backoffice.group_send"), text("ja", "backoffice.group_due")])

    # N takes the card to send (it acts at the branch, where the task lives), F finishes it.
    await press(panel, "n")
    await expect(panel.locator("#mine-kind")).to_have_text(text("ja", "backoffice.kind_send", office="テスト市 支所"))
    await press(panel, "f")
    await expect(rows).to_have_count(1)
    await expect(panel.locator("#backlog-send")).to_have_text(text("ja", "backoffice.count", n=0))


async def test_a_finish_whose_answer_is_lost_is_resent_with_the_same_key_and_applied_once(
        open_page: OpenPage, web_user: MakeUser) -> None:
    numbers = [(await web_user().issue("pickup"))["ticket"]["number"] for _ in range(2)]
    panel = await open_backoffice(open_page)
    await press(panel, "n")
    await expect(panel.locator("#mine-subject")).to_have_text(text("ja", "backoffice.ticket", number=numbers[0]))

    keys: list[str] = []

    async def lose_first_answer(route: Any) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if len(keys) == 1:
            await route.fetch()      # the server finishes the task…
            await route.abort()      # …but its answer never reaches the browser
        else:
            await route.continue_()

    await panel.route("**/api/offices/main/tasks/*/finish", lose_first_answer)
    await press(panel, "f")
    await expect(panel.locator("#message")).to_have_text(
        text("ja", "backoffice.done_finished", task=text("ja", "backoffice.ticket", number=numbers[0])))
    assert len(keys) == 2 and keys[0] == keys[1] and len(keys[0]) >= 16
    await expect(panel.locator("#work tr.bo-task")).to_have_count(1)
    await expect(task_row(panel, numbers[1]).get_by_role("button")).to_be_enabled()
