"""The routes file (`TELEMETRY_ROUTES`): which changes of mood, and which events, go where.

A *route* matches changes of a scenario's mood and sends them to its sinks; a route that names
a partner (or a partner tier) is *partner-scoped*: it receives that partner's own mood, judged
over that partner's requests only. An *event route* forwards accepted events whose fields
match to one more back end (a Kafka topic or an HTTP endpoint), beside the landing folder::

    dashboard_url: https://availability.example.com     # links in messages (optional)
    routes:
      - name: checkout-oncall                          # unique; names the deliveries
        match:                                         # every key optional; all must hold
          scenario: "checkout.*"                       # glob over scenario ids
          service: checkout                            # glob over services (scenarios.csv)
          partner: contoso                             # glob over partner ids: partner-scoped
          tier: gold                                   # partner tier (customers.csv): ditto
          severity: [page]                             # page (breaching) | ticket (degraded)
          state: [breaching, healthy]                  # the state changed to
        sinks:
          - {type: pagerduty, routing_key_env: PD_ROUTING_KEY}
          - {type: slack, url_env: SLACK_WEBHOOK_URL}
    events:
      - name: checkout-to-kafka
        match: {data.baseData.operationName: "Quote*"} # wire path -> glob
        kafka: {bootstrap: "127.0.0.1:9092", topic: checkout-events}

A change's severity is that of the worse of the states it leaves and enters, so the route that
received a page receives the recovery that ends it. Secrets (webhook URLs, routing keys,
passwords) are never in the file: a setting ending in `_env` names the environment variable
that holds it, and a variable that is not set is an error of the file, reported with its line,
like every other (all at once, `path:LINE: reason`).
"""

import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from telemetry_core.yaml_file import ConfigFileError, NodeReader, compose, shown

STATES = ("healthy", "degraded", "breaching")
SEVERITIES = ("page", "ticket")
STATE_SEVERITY = {"breaching": "page", "degraded": "ticket", "healthy": None}

# Per sink type: its settings, which are required, which hold secrets (named `<name>_env` in
# the file) and the defaults of the others.
SINK_SETTINGS: dict[str, dict[str, Any]] = {
    "slack": {"required": ("url_env",), "optional": {}},
    "pagerduty": {"required": ("routing_key_env",),
                  "optional": {"url": "https://events.pagerduty.com/v2/enqueue"}},
    # A URL that carries a token is a secret too: `url_env` instead of `url`.
    "alertmanager": {"required": (), "optional": {"url": None, "url_env": None}},
    "webhook": {"required": (), "optional": {"url": None, "url_env": None, "secret_env": None}},
    "email": {"required": ("host", "from", "to"),
              "optional": {"port": 25, "starttls": False, "username_env": None,
                           "password_env": None}},
    "xmpp": {"required": ("jid", "password_env"),
             "optional": {"address": None, "watchers": [], "plaintext": False}},
}
SINK_TYPES = tuple(SINK_SETTINGS)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WIRE_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class RoutesFileError(ConfigFileError):
    """The routes file breaks its rules; `errors` lists each as `path:line: reason`."""


@dataclass(frozen=True)
class Change:
    """One change of one mood, as a route matches it."""

    scenario_id: str
    service: str | None
    state: str
    previous_state: str
    # None for the mood of all traffic; a partner-scoped mood's partner otherwise.
    partner_id: str | None = None
    tier: str | None = None

    @property
    def severity(self) -> str | None:
        worse = max(self.state, self.previous_state, key=STATES.index)
        return STATE_SEVERITY[worse]


@dataclass(frozen=True)
class Match:
    """What a route takes: every given condition must hold (globs are case-insensitive)."""

    scenario: str = "*"
    service: str = "*"
    partner: str | None = None
    tier: str | None = None
    severities: tuple[str, ...] = ()
    states: tuple[str, ...] = ()

    @property
    def partner_scoped(self) -> bool:
        return self.partner is not None or self.tier is not None

    def takes_partner(self, partner_id: str, tier: str | None) -> bool:
        """Whether this partner's own mood is the route's (a partner-scoped route only)."""
        return (self.partner_scoped
                and fnmatchcase(partner_id.lower(), (self.partner or "*").lower())
                and (self.tier is None or (tier or "").lower() == self.tier.lower()))

    def matches(self, change: Change, episode_open: bool = False) -> bool:
        """Whether the route takes the change; one that took part of the scenario's episode
        (`episode_open`) takes the rest of it, the return to healthy included, whatever its
        severity and state conditions: the page it sent is closed by the same route."""
        if self.partner_scoped != (change.partner_id is not None):
            return False
        if change.partner_id is not None and not self.takes_partner(change.partner_id,
                                                                     change.tier):
            return False
        # A latency objective's subject is `scenario/objective`: it is its scenario's.
        scenario = change.scenario_id.partition("/")[0]
        if not (fnmatchcase(scenario.lower(), self.scenario.lower())
                and fnmatchcase((change.service or "").lower(), self.service.lower())):
            return False
        return episode_open or ((not self.severities or change.severity in self.severities)
                                and (not self.states or change.state in self.states))


@dataclass(frozen=True)
class Sink:
    """One destination of a route: its type, plain settings and the variables of its secrets."""

    type: str
    settings: Mapping[str, Any]
    # Setting name (without `_env`) -> the environment variable that holds it.
    secret_vars: Mapping[str, str]
    line: int

    def secret(self, name: str, environ: Mapping[str, str] | None = None) -> str | None:
        variable = self.secret_vars.get(name)
        if variable is None:
            return None
        return (os.environ if environ is None else environ).get(variable)

    @property
    def label(self) -> str:
        """How the sink is shown (in the UI, logs, the outbox): never with a secret."""
        where = self.settings.get("url") or self.settings.get("jid") or ""
        # user:password@ in a URL is a credential.
        where = re.sub(r"^(https?://)[^/@]*@", r"\1", where)
        if self.type == "email":
            where = ", ".join(self.settings["to"])
        if "url" in self.secret_vars:
            where = f"${self.secret_vars['url']}"
        return f"{self.type} {where}".strip()


@dataclass(frozen=True)
class Route:
    name: str
    match: Match
    sinks: tuple[Sink, ...]
    line: int


@dataclass(frozen=True)
class EventRoute:
    """Forward accepted events whose fields match (wire path -> glob) to a Kafka topic or an
    HTTP endpoint."""

    name: str
    fields: tuple[tuple[str, str], ...]
    line: int
    kafka_bootstrap: str | None = None
    kafka_topic: str | None = None
    http_url: str | None = None

    def matches(self, event: Mapping[str, Any]) -> bool:
        for path, glob in self.fields:
            value: Any = event
            for part in path.split("."):
                value = value.get(part) if isinstance(value, Mapping) else None
            if value is None or isinstance(value, Mapping | list):
                return False
            if not fnmatchcase(str(value).lower(), glob.lower()):
                return False
        return True


@dataclass(frozen=True)
class RoutesConfig:
    routes: tuple[Route, ...] = ()
    events: tuple[EventRoute, ...] = ()
    dashboard_url: str | None = None
    source: Path | None = None
    partners: Mapping[str, str | None] = field(default_factory=dict)

    def routes_for(self, change: Change, open_on: Collection[str] = ()) -> list[Route]:
        """The routes that take the change; `open_on` names those that took an earlier change
        of the same episode."""
        return [route for route in self.routes
                if route.match.matches(change, route.name in open_on)]

    def scoped_partners(self) -> list[str]:
        """The partners whose own mood some route wants, of those customers.csv knows."""
        return sorted(p for p, tier in self.partners.items()
                      if any(r.match.takes_partner(p, tier) for r in self.routes))

    def describe(self) -> list[str]:
        """One line per route and sink, secrets named by their variables only."""
        lines = []
        for route in self.routes:
            match = route.match
            conditions = [f"scenario {match.scenario}"] if match.scenario != "*" else []
            conditions += [f"service {match.service}"] if match.service != "*" else []
            conditions += [f"partner {match.partner}"] if match.partner else []
            conditions += [f"tier {match.tier}"] if match.tier else []
            conditions += [f"severity {'|'.join(match.severities)}"] if match.severities else []
            conditions += [f"state {'|'.join(match.states)}"] if match.states else []
            scope = "partner-scoped, " if match.partner_scoped else ""
            lines.append(f"{route.name}: {scope}{', '.join(conditions) or 'every change'} -> "
                         + "; ".join(sink.label for sink in route.sinks))
        for event_route in self.events:
            where = (f"kafka {event_route.kafka_bootstrap}/{event_route.kafka_topic}"
                     if event_route.kafka_topic else f"http {event_route.http_url}")
            fields = ", ".join(f"{path}={glob}" for path, glob in event_route.fields)
            lines.append(f"events {event_route.name}: {fields or 'every event'} -> {where}")
        return lines


def load_routes(
    path: Path | None,
    scenarios: Mapping[str, str | None] | None = None,
    partners: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> RoutesConfig:
    """The routes of `path` (None: no routes). `scenarios` (scenario_id -> service) and
    `partners` (partner_id -> tier), when given, are the reference a glob must match something
    of; `environ` (default os.environ) must hold every secret the file names. Raises
    RoutesFileError naming every bad line."""
    if path is None:
        return RoutesConfig(partners=dict(partners or {}))
    try:
        root = compose(Path(path), "routes file")
    except ConfigFileError as error:
        raise RoutesFileError(error.errors) from error
    reader = _Reader(Path(path), scenarios, partners,
                     os.environ if environ is None else environ)
    config = reader.config(root)
    try:
        reader.raise_errors()
    except ConfigFileError as error:
        raise RoutesFileError(error.errors) from None
    return config


def routes_path(environ: Mapping[str, str] | None = None) -> Path | None:
    value = (os.environ if environ is None else environ).get("TELEMETRY_ROUTES", "").strip()
    return Path(value) if value else None


def bad_glob(glob: str) -> str | None:
    """Why `glob` is not a glob fnmatch reads as its author meant, or None."""
    depth = 0
    for char in glob:
        if char == "[":
            if depth:
                return "a '[' inside a character class"
            depth = 1
        elif char == "]" and depth:
            depth = 0
    if depth:
        return "an unclosed '['"
    if "[]" in glob:
        return "an empty character class '[]'"
    return None


_TOP_KEYS = ("dashboard_url", "routes", "events")
_ROUTE_KEYS = ("name", "match", "sinks")
_MATCH_KEYS = ("scenario", "service", "partner", "tier", "severity", "state")
_EVENT_KEYS = ("name", "match", "kafka", "http")


class _Reader(NodeReader):
    def __init__(self, path: Path, scenarios: Mapping[str, str | None] | None,
                 partners: Mapping[str, str | None] | None, environ: Mapping[str, str]):
        super().__init__(path)
        self.scenarios = scenarios
        self.partners = partners
        self.environ = environ
        self.names: dict[str, int] = {}

    def config(self, root: Node | None) -> RoutesConfig:
        if root is None:
            return RoutesConfig(source=self.path, partners=dict(self.partners or {}))
        top = self.mapping(root, "the top level", _TOP_KEYS)
        if top is None:
            return RoutesConfig()
        dashboard_url = None
        if "dashboard_url" in top:
            dashboard_url = self.url(top["dashboard_url"], "dashboard_url")
        routes = [route for entry in self.sequence(top["routes"], "routes")
                  if (route := self.route(entry)) is not None] if "routes" in top else []
        events = [event for entry in self.sequence(top["events"], "events")
                  if (event := self.event_route(entry)) is not None] if "events" in top else []
        return RoutesConfig(routes=tuple(routes), events=tuple(events),
                            dashboard_url=dashboard_url, source=self.path,
                            partners=dict(self.partners or {}))

    def name(self, node: Node) -> str | None:
        name = self.text(node, "name")
        if name is None:
            return None
        if not _NAME.match(name):
            self.error(node, f"name {name!r} may hold only letters, digits, '.', '_' and '-', "
                             "starting with a letter or digit")
            return None
        if name in self.names:
            self.error(node, f"duplicate name {name!r} (line {self.names[name]})")
            return None
        self.names[name] = node.start_mark.line + 1
        return name

    def url(self, node: Node, what: str) -> str | None:
        url = self.text(node, what)
        if url is not None and not re.match(r"^https?://[^\s/]+", url):
            self.error(node, f"{what} {url!r} is not an http:// or https:// URL")
            return None
        return url

    def glob(self, node: Node, what: str, known: Collection[str] | None) -> str | None:
        glob = self.text(node, what)
        if glob is None:
            return None
        problem = bad_glob(glob)
        if problem:
            self.error(node, f"{what} {glob!r} is not a valid glob: {problem}")
            return None
        if known is not None and not any(fnmatchcase(k.lower(), glob.lower()) for k in known):
            self.error(node, f"{what} {glob!r} matches no {what} of the reference data")
            return None
        return glob

    def choices(self, node: Node, what: str, allowed: tuple[str, ...]) -> tuple[str, ...] | None:
        items = [node] if isinstance(node, ScalarNode) else self.sequence(node, what)
        found = []
        for item in items:
            value = self.text(item, what)
            if value is None:
                return None
            if value not in allowed:
                self.error(item, f"unknown {what} {value!r} (one of: {', '.join(allowed)})")
                return None
            found.append(value)
        return tuple(found)

    def match(self, node: Node) -> Match | None:
        if self.is_null(node):
            return Match()
        entries = self.mapping(node, "a match", _MATCH_KEYS)
        if entries is None:
            return None
        services = ({s for s in self.scenarios.values() if s}
                    if self.scenarios is not None else None)
        tiers = ({t for t in self.partners.values() if t}
                 if self.partners is not None else None)
        values: dict[str, Any] = {}
        ok = True
        for key, known in (("scenario", self.scenarios), ("service", services),
                           ("partner", self.partners)):
            if key in entries:
                values[key] = self.glob(entries[key], key, known)
                ok = ok and values[key] is not None
        if "tier" in entries:
            tier = self.text(entries["tier"], "tier")
            if tier is not None and tiers is not None and tier not in tiers:
                self.error(entries["tier"], f"unknown tier {tier!r} (customers.csv has: "
                                            f"{', '.join(sorted(tiers)) or 'none'})")
                tier = None
            values["tier"] = tier
            ok = ok and tier is not None
        for key, allowed, attribute in (("severity", SEVERITIES, "severities"),
                                        ("state", STATES, "states")):
            if key in entries:
                values[attribute] = self.choices(entries[key], key, allowed)
                ok = ok and values[attribute] is not None
                values.pop(key, None)
        return Match(**values) if ok else None

    def route(self, node: Node) -> Route | None:
        entries = self.mapping(node, "a route", _ROUTE_KEYS, ("name", "sinks"))
        if entries is None:
            return None
        name = self.name(entries["name"]) if "name" in entries else None
        match = self.match(entries["match"]) if "match" in entries else Match()
        sinks = []
        if "sinks" in entries:
            nodes = self.sequence(entries["sinks"], "sinks")
            if not nodes:
                self.error(entries["sinks"], "a route needs at least one sink")
            sinks = [sink for item in nodes if (sink := self.sink(item)) is not None]
            if len(sinks) != len(nodes):
                return None
        if name is None or match is None or not sinks:
            return None
        return Route(name=name, match=match, sinks=tuple(sinks), line=node.start_mark.line + 1)

    def sink(self, node: Node) -> Sink | None:
        entries = self.mapping(node, "a sink", ("type", *sorted(
            {k for spec in SINK_SETTINGS.values()
             for k in (*spec["required"], *spec["optional"])})), ("type",))
        if entries is None or "type" not in entries:
            return None
        kind = self.text(entries["type"], "type")
        if kind is None:
            return None
        if kind not in SINK_SETTINGS:
            self.error(entries["type"], f"unknown sink type {kind!r} "
                                        f"(one of: {', '.join(SINK_TYPES)})")
            return None
        spec = SINK_SETTINGS[kind]
        allowed = {"type", *spec["required"], *spec["optional"]}
        ok = True
        for key in entries:
            if key not in allowed:
                self.error(entries[key], f"a {kind} sink takes no {key!r} "
                                         f"(it takes: {', '.join(sorted(allowed - {'type'}))})")
                ok = False
        for key in spec["required"]:
            if key not in entries:
                self.error(node, f"a {kind} sink needs {key!r}")
                ok = False
        if kind in ("alertmanager", "webhook") and ("url" in entries) == ("url_env" in entries):
            self.error(node, f"a {kind} sink needs one of 'url' and 'url_env'")
            ok = False
        settings: dict[str, Any] = {k: v for k, v in spec["optional"].items()
                                    if not k.endswith("_env") and not (k == "url" and v is None)}
        secret_vars: dict[str, str] = {}
        for key, value_node in entries.items():
            if key == "type" or key not in allowed:
                continue
            if key.endswith("_env"):
                variable = self.env_var(value_node, key, kind)
                ok = ok and variable is not None
                if variable is not None:
                    secret_vars[key.removesuffix("_env")] = variable
            elif key in ("url",):
                settings[key] = self.url(value_node, f"the {kind} sink's url")
                ok = ok and settings[key] is not None
            elif key == "port":
                port = self.number(value_node, "port")
                if port is not None and (not port.is_integer() or not 0 < port < 65536):
                    self.error(value_node, f"port {shown(value_node)} is not a port number")
                    port = None
                settings[key] = int(port) if port is not None else None
                ok = ok and port is not None
            elif key in ("starttls", "plaintext"):
                flag = self.value(value_node) if isinstance(value_node, ScalarNode) else None
                if not isinstance(flag, bool):
                    self.error(value_node, f"{key} must be true or false")
                    ok = False
                settings[key] = flag
            elif key in ("to", "watchers"):
                items = ([value_node] if isinstance(value_node, ScalarNode)
                         else self.sequence(value_node, key))
                addresses = [self.text(item, key) for item in items]
                for item, address in zip(items, addresses, strict=True):
                    if address is not None and "@" not in address:
                        self.error(item, f"{key} {address!r} is not an address (no '@')")
                        ok = False
                if key == "to" and not items:
                    self.error(value_node, "an email sink needs at least one address in 'to'")
                    ok = False
                ok = ok and None not in addresses
                settings[key] = [a for a in addresses if a]
            else:
                settings[key] = self.text(value_node, key)
                ok = ok and settings[key] is not None
        if kind == "email" and ("username" in secret_vars) != ("password" in secret_vars):
            self.error(node, "an email sink takes username_env and password_env together")
            ok = False
        if kind == "xmpp" and ok and "@" not in settings["jid"]:
            self.error(entries["jid"], f"jid {settings['jid']!r} is not an XMPP address "
                                       "such as mood@example.org")
            ok = False
        if not ok:
            return None
        return Sink(type=kind, settings=settings, secret_vars=secret_vars,
                    line=node.start_mark.line + 1)

    def env_var(self, node: Node, key: str, kind: str) -> str | None:
        variable = self.text(node, key)
        if variable is None:
            return None
        if not _ENV_NAME.match(variable):
            self.error(node, f"{key} {variable!r} is not an environment variable name: it "
                             "names the variable that holds the secret, not the secret")
            return None
        value = self.environ.get(variable, "").strip()
        if not value:
            self.error(node, f"the environment variable {variable} is not set (the {kind} "
                             f"sink's {key})")
            return None
        # Named, never shown: the value is the secret.
        if key == "url_env" and not re.match(r"^https?://[^\s/]+\S*$", value):
            self.error(node, f"the environment variable {variable} does not hold an http:// or "
                             "https:// URL")
            return None
        return variable

    def event_route(self, node: Node) -> EventRoute | None:
        entries = self.mapping(node, "an event route", _EVENT_KEYS, ("name",))
        if entries is None:
            return None
        name = self.name(entries["name"]) if "name" in entries else None
        fields: list[tuple[str, str]] = []
        ok = name is not None
        if "match" in entries and not self.is_null(entries["match"]):
            pairs = (entries["match"].value
                     if isinstance(entries["match"], MappingNode) else None)
            if pairs is None:
                self.error(entries["match"], "an event route's match must be a mapping of "
                                             "wire paths to globs")
                return None
            for key_node, value_node in pairs:
                path = self.text(key_node, "a wire path")
                if path is not None and not _WIRE_PATH.match(path):
                    self.error(key_node, f"{path!r} is not a wire path such as "
                                         "data.baseData.operationName")
                    path = None
                glob = self.glob(value_node, f"the glob for {path}", None)
                ok = ok and path is not None and glob is not None
                if path is not None and glob is not None:
                    fields.append((path, glob))
        destinations = [key for key in ("kafka", "http") if key in entries]
        if len(destinations) != 1:
            self.error(node, "an event route needs exactly one of 'kafka' and 'http'")
            return None
        values: dict[str, Any] = {}
        if "kafka" in entries:
            kafka = self.mapping(entries["kafka"], "kafka", ("bootstrap", "topic"),
                                 ("bootstrap", "topic"))
            if kafka is None or len(kafka) != 2:
                return None
            values["kafka_bootstrap"] = self.text(kafka["bootstrap"], "bootstrap")
            values["kafka_topic"] = self.text(kafka["topic"], "topic")
        else:
            http = self.mapping(entries["http"], "http", ("url",), ("url",))
            if http is None or "url" not in http:
                return None
            values["http_url"] = self.url(http["url"], "the http url")
        if not ok or None in values.values():
            return None
        return EventRoute(name=name or "", fields=tuple(fields), line=node.start_mark.line + 1,
                          **values)
