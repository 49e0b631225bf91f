"""The presence board against a real Prosody: a watcher subscribed to the platform's account
sees one presence per subject, and only the changes."""

import time

import pytest

from telemetry_notify.xmpp import PresenceBoard, PresenceError
from tests.telemetry_notify.servers import Prosody, XmppClient, wait_until

CHECKOUT, OVERALL = "checkout.purchase_quote", "overall"


@pytest.fixture
def accounts(prosody: Prosody) -> tuple[str, str]:
    return prosody.create_account("mood", "mood-secret"), prosody.create_account("sre", "sre-pw")


def board_for(prosody: Prosody, password: str = "mood-secret", **options) -> PresenceBoard:
    return PresenceBoard(f"mood@{prosody.host}", password, (prosody.host_address, prosody.port),
                         allow_plaintext=True, timeout=5, **options)  # fmt: skip


SUBSCRIPTION_TYPES = ("subscribe", "subscribed", "unsubscribe", "unsubscribed")


def shown(watcher: XmppClient, mood: str) -> list[tuple[str, str, str, str]]:
    """(resource, type, show, status) of each presence from the account but subscription ones."""
    return [(p.resource, p.type, p.show, p.status) for p in watcher.presences(of=mood)
            if p.type not in SUBSCRIPTION_TYPES]  # fmt: skip


def test_a_watcher_sees_each_subject_and_only_what_changed(prosody, accounts):
    mood, sre = accounts
    watcher = XmppClient(prosody, sre, "sre-pw").start()
    # Asked before the board is online: the server keeps the request until a session is.
    watcher.subscribe(mood)
    board = board_for(prosody, watchers=[sre])
    try:
        board.update({CHECKOUT: ("healthy", "99.95% over 10 min"),
                      OVERALL: ("healthy", "within SLA")})  # fmt: skip
        wait_until(lambda: {(CHECKOUT, "chat", "chat", "99.95% over 10 min"),
                            (OVERALL, "chat", "chat", "within SLA")} <= set(shown(watcher, mood)),
                   what="both subjects' presence")  # fmt: skip
        # The server repeats the account's presences as the subscription settles both ways.
        watcher.wait_quiet(mood)
        before = len(shown(watcher, mood))

        board.update({CHECKOUT: ("breaching", "burning 14.4x the error budget"),
                      OVERALL: ("healthy", "within SLA")})  # fmt: skip
        wait_until(lambda: len(shown(watcher, mood)) > before, what="the change")
        watcher.wait_quiet(mood)
        assert shown(watcher, mood)[before:] == [
            (CHECKOUT, "dnd", "dnd", "burning 14.4x the error budget")
        ]

        board.close()
        wait_until(lambda: {(CHECKOUT, "unavailable"), (OVERALL, "unavailable")}
                   <= {(resource, kind) for resource, kind, *_ in shown(watcher, mood)},
                   what="both subjects unavailable")  # fmt: skip
    finally:
        board.close()
        watcher.stop()


def test_a_subject_with_a_slash_is_one_resource(prosody, accounts):
    mood, sre = accounts
    watcher = XmppClient(prosody, sre, "sre-pw").start()
    subject = "checkout.purchase_quote/fast-quote"
    try:
        with board_for(prosody) as board:
            board.update({subject: ("degraded", "p95 812 ms")})
            # Asked while the board is online: answered at once.
            watcher.subscribe(mood)
            wait_until(lambda: (subject, "away", "away", "p95 812 ms") in shown(watcher, mood),
                       what="the latency objective's presence")  # fmt: skip
    finally:
        watcher.stop()


def test_a_watcher_not_listed_is_refused(prosody, accounts):
    mood, sre = accounts
    watcher = XmppClient(prosody, sre, "sre-pw").start()
    try:
        with board_for(prosody, watchers=["boss@localhost"]) as board:
            board.update({OVERALL: ("healthy", "within SLA")})
            watcher.subscribe(mood)
            wait_until(lambda: any(p.type == "unsubscribed" for p in watcher.presences(mood)),
                       what="the refusal")  # fmt: skip
            watcher.wait_quiet(mood)
        assert [seen for seen in shown(watcher, mood) if seen[1] != "unavailable"] == []
    finally:
        watcher.stop()


def test_a_wrong_password_fails_fast_with_a_clear_error(prosody, accounts):
    started = time.monotonic()
    with board_for(prosody, password="not-it") as board, pytest.raises(PresenceError) as error:
        board.update({OVERALL: ("healthy", "within SLA")})
    assert time.monotonic() - started < 5
    assert "refused the account's password" in str(error.value)
    assert "mood@localhost/overall" in str(error.value)
    assert "not-it" not in str(error.value)


def test_by_default_the_password_is_never_sent_without_tls(prosody, accounts):
    board = PresenceBoard("mood@localhost", "mood-secret", (prosody.host_address, prosody.port),
                          timeout=5)  # fmt: skip
    with board, pytest.raises(PresenceError, match=r"no login method .* allowed"):
        board.update({OVERALL: ("healthy", "within SLA")})


def test_an_unreachable_server_fails_fast_with_a_clear_error(prosody, accounts):
    prosody.stop()
    with board_for(prosody) as board, pytest.raises(PresenceError, match="cannot connect"):
        board.update({OVERALL: ("healthy", "within SLA")})


def test_an_unknown_state_is_refused_before_anything_is_sent(prosody, accounts):
    with board_for(prosody) as board, pytest.raises(ValueError, match="healthy, degraded"):
        board.update({OVERALL: ("fine", "within SLA")})
