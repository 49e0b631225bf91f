"""XMPP presence: the service mood as the presence of the platform's account in people's rosters.

Each subject (a scenario such as `checkout.purchase_quote`, a latency objective such as
`checkout.purchase_quote/fast-quote`, and `overall`) is one resource of the account, so a watcher
subscribed to `mood@example.org` sees one presence per subject, its status text the level and its
`show` the state:

    healthy   → chat  (free for chat: nothing needs anyone)
    degraded  → away  (someone should look soon)
    breaching → dnd   (do not disturb: the team is busy with it)

Presence lasts only as long as the session that sent it, so a `PresenceBoard` is long-lived: one
client session per subject on an asyncio loop of its own, in a daemon thread. `close()` ends the
sessions, and watchers see the resources go unavailable.

A subscription request from a listed watcher (from anyone, if none is listed) is approved, and
the account subscribes back; anyone else is refused.

Sessions use STARTTLS on the client port and refuse to log in without it, unless
`allow_plaintext` (meant for a server on loopback), where they log in with SCRAM over plain TCP.
"""

import asyncio
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.jid import InvalidJID

log = logging.getLogger("telemetry_notify.xmpp")

SHOW = {"healthy": "chat", "degraded": "away", "breaching": "dnd"}
DEFAULT_PORT = 5222


class PresenceError(RuntimeError):
    """The XMPP server could not be reached, or did not let the account in."""


class PresenceBoard:
    """One XMPP session per subject, each showing that subject's service level as its presence."""

    def __init__(
        self,
        jid: str,
        password: str,
        address: tuple[str, int] | None = None,
        *,
        allow_plaintext: bool = False,
        watchers: Iterable[str] = (),
        timeout: float = 10.0,
    ) -> None:
        self.jid = JID(jid)
        if not self.jid.user or self.jid.resource:
            raise ValueError(f"expected a bare account JID such as mood@example.org, got {jid!r}")
        self.address = address or (self.jid.domain, DEFAULT_PORT)
        self.allow_plaintext = allow_plaintext
        self.watchers = frozenset(JID(watcher).bare for watcher in watchers)
        self.timeout = timeout
        self._password = password
        self._sessions: dict[str, ClientXMPP] = {}
        self._sent: dict[str, tuple[str, str]] = {}
        # Two updates at once could open two sessions for one new subject.
        self._updating = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"presence {self.jid.bare}", daemon=True
        )
        self._thread.start()

    def update(self, levels: Mapping[str, tuple[str, str]]) -> None:
        """Send the presence of every subject whose level changed, connecting new subjects."""
        for subject, (state, _) in levels.items():
            if state not in SHOW:
                raise ValueError(f"{subject}: state {state!r} is not one of {', '.join(SHOW)}")
            self._resource_jid(subject)
        with self._updating:
            if self._loop.is_closed():
                raise PresenceError(f"XMPP presence for {self.jid.bare}: the board is closed")
            future = asyncio.run_coroutine_threadsafe(self._update(dict(levels)), self._loop)
            # The coroutine bounds each of its waits by the timeout; this only guards a hang.
            future.result(timeout=self.timeout * 2 + 5)

    def close(self) -> None:
        """End every session (watchers see the subjects go unavailable) and stop the loop."""
        with self._updating:
            if self._loop.is_closed():
                return
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(self.timeout + 5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=self.timeout)
            self._loop.close()

    def __enter__(self) -> "PresenceBoard":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _resource_jid(self, subject: str) -> JID:
        try:
            return JID(f"{self.jid.bare}/{subject}")
        except InvalidJID as error:
            raise ValueError(f"{subject!r} cannot be an XMPP resource: {error}") from None

    async def _update(self, levels: dict[str, tuple[str, str]]) -> None:
        changed = {s: level for s, level in levels.items() if self._sent.get(s) != level}
        results = await asyncio.gather(
            *(self._publish(subject, level) for subject, level in changed.items()),
            return_exceptions=True,
        )
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:
            raise failures[0]

    async def _publish(self, subject: str, level: tuple[str, str]) -> None:
        client = self._sessions.get(subject)
        new = client is None
        if new:
            client = await self._connect(subject)
        state, status = level
        client.send_presence(pshow=SHOW[state], pstatus=status)
        self._sent[subject] = level
        try:
            if new:
                # Asked for after the first presence, so that a watcher approved from now on is
                # sent this level and not a blank one; asking makes the server forward
                # subscription requests to this session.
                await client.get_roster(timeout=self.timeout)
            await asyncio.wait_for(client.waiting_queue.join(), self.timeout)
        except (TimeoutError, IqError, IqTimeout) as error:
            raise PresenceError(f"XMPP presence for {self.jid.bare}/{subject}: the server did "
                                f"not answer ({error!r})") from None  # fmt: skip

    async def _connect(self, subject: str) -> ClientXMPP:
        client = ClientXMPP(
            self._resource_jid(subject),
            self._password,
            plugin_config={"feature_mechanisms": {"unencrypted_scram": self.allow_plaintext}},
        )
        client.enable_direct_tls = False
        client.enable_starttls = not self.allow_plaintext
        client.enable_plaintext = self.allow_plaintext
        # The board answers subscription requests itself (_answer), once and not once per session.
        client.roster.auto_authorize = None
        client.roster.auto_subscribe = False
        client.add_event_handler("roster_subscription_request", lambda p: self._answer(client, p))

        host, port = self.address
        where = f"{self.jid.bare}/{subject} at {host}:{port}"
        started = self._loop.create_future()
        refused = []

        def fail(reason: str) -> None:
            if not started.done():
                started.set_exception(PresenceError(f"XMPP presence for {where}: {reason}"))

        def start(_: object) -> None:
            if not started.done():
                started.set_result(None)

        def end(reason: object) -> None:
            if self._sessions.get(subject) is client:
                log.warning("XMPP session %s ended: %s", where, reason)
                del self._sessions[subject]
                self._sent.pop(subject, None)
            fail(f"the server closed the connection ({reason})")

        client.add_event_handler("session_start", start)
        client.add_event_handler("connection_failed", lambda e: fail(f"cannot connect: {e}"))
        client.add_event_handler("failed_auth", refused.append)
        client.add_event_handler("failed_all_auth", lambda _: fail(
            "the server refused the account's password" if refused else
            "no login method the server offers is allowed on this connection (no TLS?)"
        ))  # fmt: skip
        client.add_event_handler("disconnected", end)

        log.info("connecting XMPP presence %s", where)
        client.connect(host, port)
        try:
            await asyncio.wait_for(started, self.timeout)
        except (PresenceError, TimeoutError) as error:
            # Left alone, slixmpp would keep trying to connect, backing off, for ever.
            client.cancel_connection_attempt()
            client.disconnect(wait=0)
            if isinstance(error, TimeoutError):
                error = PresenceError(f"XMPP presence for {where}: no session after "
                                      f"{self.timeout:g} s")  # fmt: skip
            log.warning("%s", error)
            raise error from None
        self._sessions[subject] = client
        return client

    def _answer(self, client: ClientXMPP, request: Any) -> None:
        # A request reaches every session; the oldest one answers it for the account.
        if client is not next(iter(self._sessions.values()), None):
            return
        watcher = client.roster[request["to"]][request["from"]]
        if self.watchers and request["from"].bare not in self.watchers:
            # Told no rather than left pending, so that a stranger's client stops asking.
            log.info("XMPP presence: refused %s's subscription to %s", request["from"].bare,
                     self.jid.bare)  # fmt: skip
            watcher.unauthorize()
            return
        watcher.authorize()
        # Subscribing back makes the watcher a contact both ways, as chat clients expect.
        watcher.subscribe()

    async def _close(self) -> None:
        sessions = list(self._sessions.values())
        self._sessions.clear()
        self._sent.clear()
        await asyncio.gather(*(session.disconnect() for session in sessions))
        # slixmpp leaves its send loops running; ended here, they cannot outlive the loop.
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
