"""Fuzz the receiver with signed, mutated real fixtures: never a 5xx, never a 202 the worker cannot use.

Every product's fixtures are bent out of shape (values replaced by edge values or by pieces of other
fixtures, keys dropped or added, event kinds swapped, lone surrogates, impossible and far dates, deep
nesting), signed as the product signs, and posted to the real receiver (Flask app, real Redis). Each
answer must be below 500; a 400 names the failing path; a 202 must be a delivery the worker can use:
its queued body parses as the worker parses it (json.loads), the instance's adapter normalises it,
and every event encodes as the store writes it. A fixed seed keeps it reproducible; a failure
prints the seed, the fixture and the mutated body. 4,000 deliveries per product take about 4 s each
on a 2-core machine (no wall-clock assertion: a loaded CI machine must not make it flaky).
"""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from adapters.jira import inbound as jira_inbound
from adapters.jira.tests import helpers as jh
from adapters.zendesk import inbound as zendesk_inbound
from adapters.zendesk.tests import helpers as zh
from connector.config.loader import Config, config_from_dict
from connector.receiver.app import create_app
from connector.state.store import encode_event
from sla.events import TicketEvent

SEED = 20261127
PER_PRODUCT = 4000
ROOT = Path(__file__).resolve().parents[2]
Path_ = tuple[str | int, ...]


def _fixtures(folder: str, pattern: str) -> list[tuple[str, Any]]:
    found = sorted((ROOT / folder).glob(pattern))
    assert found, f"no fixtures in {folder}/{pattern}"
    return [(p.name, json.loads(p.read_text())) for p in found]


JIRA = _fixtures("adapters/jira/tests/fixtures", "*.json")
ZENDESK = _fixtures("adapters/zendesk/tests/fixtures", "*.json")


def _nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"content": value}
    return value


# Values on the edges of what the schemas and normalisers read.
EDGES: list[Any] = [
    None, True, False, 0, -1, 1, 7, 2**63, 10**17, 10**30, 1.5, -0.5, 1e308, "", " ", "-", "0", "7", "abc",
    "\ud800", "ok\udfff", "\ud83d", "x" * 300, "2026-11-27T10:15:30.000+0000", "2026-11-27T10:15:30Z",
    "2025-02-30T10:00:00Z", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00.000+0100",
    "0001-01-01T00:00:00.000+0000", "1969-12-31T23:59:59Z", "2200-01-01T00:00:00Z", "2026-13-01T00:00:00Z",
    "2026-11-27T24:00:00Z", "2026-11-27T10:15:60.000+0000", "2026-11-27", "zen:ticket:5158", "zen:ticket:",
    "zen:event-type:ticket.comment_added", "zen:event-type:ticket.status_changed", "zendesk-trigger-v1",
    "jira:issue_created", "jira:issue_updated", "comment_created", "true", "false", "OPEN", "solved",
    "https://acme.atlassian.net/rest/api/3/issue/10042/comment/1", "[sla-connector:x]",
    [], {}, [1], ["a", None], {"a": 1}, {"content": 5}, {"content": {"a": 1}}, {"content": [5, "x"]},
    {"name": None}, {"accountId": 5}, {"key": "sd.public.comment", "value": "x"},
    [{"key": "sd.public.comment", "value": [1]}], {"internal": "yes"}, float("nan"), float("inf"),
    # Deep values are built fresh (deepcopy recurses several frames per level).
    lambda: _nested(40, "deep"), lambda: _nested(70, "adf"), lambda: _nested(300, 1), lambda: _nested(600, 1),
]
# Keys to add: ones the normalisers read, whether or not the fixture has them.
EXTRA_KEYS = ["content", "properties", "visibility", "jsdPublic", "created", "id", "self", "comment",
              "changelog", "fields", "issue", "detail", "event", "current", "previous", "status", "priority",
              "labels", "tags", "assignee", "reporter", "author", "body", "custom_status", "created_at",
              "updated_at", "latest_comment", "current_user", "is_public", "is_staff", "items", "text"]


def _paths(value: Any) -> Iterator[tuple[Path_, Any]]:
    """Every (path, value) in a JSON document, without recursion (some are 600 levels deep)."""
    stack: list[tuple[Path_, Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        yield path, node
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        stack += [((*path, key), item) for key, item in items]


def _parent(root: Any, path: Path_) -> Any:
    node = root
    for part in path[:-1]:
        node = node[part]
    return node


class Mutator:
    """Bends a fixture: each call applies one to three mutations chosen by the seeded `rng`."""

    def __init__(self, rng: random.Random, corpus: list[tuple[str, Any]], kinds: list[str], kind_key: str):
        self.rng = rng
        self.kinds = kinds
        self.kind_key = kind_key
        self.pieces = [value for _, doc in corpus for _, value in _paths(doc)]  # never mutated: copied
        self.keys = sorted({k for _, doc in corpus for p, _ in _paths(doc) for k in p if isinstance(k, str)}
                           | set(EXTRA_KEYS))

    def value(self) -> Any:
        if self.rng.random() < 0.6:
            edge = self.rng.choice(EDGES)
            return edge() if callable(edge) else copy.deepcopy(edge)
        return copy.deepcopy(self.rng.choice(self.pieces))

    def tweak(self, text: str) -> Any:
        """A near miss of a real string: a digit changed, cut short, a surrogate or a newline added."""
        choice = self.rng.randrange(5)
        if choice == 0 and text:
            i = self.rng.randrange(len(text))
            return text[:i] + self.rng.choice("09Z:+-T\ud800 ") + text[i + 1:]
        if choice == 1:
            return text[: self.rng.randrange(len(text) + 1)]
        if choice == 2:
            return text + self.rng.choice(["\ud800", "\n", " ", "0", "Z"])
        if choice == 3:
            return text.upper()
        return "\udc00" + text

    def __call__(self, doc: Any) -> Any:
        doc = copy.deepcopy(doc)
        for _ in range(self.rng.choice((1, 1, 2, 3))):
            paths = list(_paths(doc))
            path, node = self.rng.choice(paths)
            op = self.rng.random()
            if op < 0.1 and isinstance(doc, dict):
                doc[self.kind_key] = self.rng.choice(self.kinds)
            elif op < 0.15:
                doc = self.value()  # the whole body replaced
            elif op < 0.35 and isinstance(node, str) and path:
                _parent(doc, path)[path[-1]] = self.tweak(node)
            elif op < 0.5 and isinstance(node, dict) and node:
                del node[self.rng.choice(list(node))]
            elif op < 0.65 and isinstance(node, dict):
                node[self.rng.choice(self.keys)] = self.value()
            elif path:
                _parent(doc, path)[path[-1]] = self.value()
        return doc


def _body(rng: random.Random, doc: Any) -> bytes:
    """JSON as products send it; sometimes with non-ASCII written raw (surrogates then escaped)."""
    if rng.random() < 0.5:
        return json.dumps(doc).encode()
    text = json.dumps(doc, ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(doc).encode()


def _config() -> Config:
    instances = {"jira-cloud": jh.CLOUD_CONFIG, "jira-dc": jh.DC_CONFIG, "zendesk": zh.config()}
    return config_from_dict({"instances": instances}, {**jh.ENV, **zh.ENV}, source="fuzz.yaml")


def _normalise_as_the_worker(cfg: Config, instance: str, body: bytes, headers: dict[str, str]) -> None:
    """What the worker does with a queued delivery: parse, normalise, store each event."""
    payload = json.loads(body)
    kept = {name.lower(): value for name, value in headers.items() if "signature" not in name.lower()}
    events = cfg.instances[instance].adapter.normalise(payload, kept)
    for event in events:
        assert isinstance(event, TicketEvent)
        event.ticket_id.encode()  # a Redis key
        encode_event(event).encode()


def _run(client: FlaskClient, cfg: Config, rng: random.Random,
         deliveries: Iterator[tuple[str, str, bytes, dict[str, str]]]) -> Counter[str]:
    seen: Counter[str] = Counter()
    for n, (instance, name, body, headers) in enumerate(deliveries):
        where = f"seed {SEED}, delivery {n}, fixture {name}, body {body[:3000]!r}"
        response = client.post(f"/hooks/{instance}", data=body, headers=headers)
        answer = response.get_json()
        assert response.status_code < 500, f"{where}: {response.status_code} {answer}"
        seen[str(response.status_code)] += 1
        if response.status_code == 202:
            try:
                _normalise_as_the_worker(cfg, instance, body, headers)
            except Exception as exc:  # noqa: BLE001 - the assertion names it
                pytest.fail(f"{where}: accepted (202) but the worker fails: {type(exc).__name__}: {exc}")
        elif response.status_code == 400:
            path = answer.get("path")
            assert isinstance(path, str) and path.startswith("$"), f"{where}: {answer}"
            # Every rejection the mutations reach is a known one, worded by the adapter or the receiver,
            # never the net for an error nobody anticipated.
            assert answer["error"] != "unprocessable", f"{where}: {answer}"
            seen[f"400 {answer['path'].split('[')[0][:40]}"] += 1
    return seen


@pytest.fixture
def fuzz_client(redis_conn: redis.Redis) -> tuple[FlaskClient, Config]:
    cfg = _config()
    return create_app(cfg, redis_conn).test_client(), cfg


def _check_spread(seen: Counter[str]) -> None:
    # Not degenerate: the mutations reach both acceptance and rejection, often.
    assert seen["202"] > PER_PRODUCT // 10 and seen["400"] > PER_PRODUCT // 4, seen.most_common(12)


def test_fuzz_jira(fuzz_client: tuple[FlaskClient, Config]) -> None:
    client, cfg = fuzz_client
    rng = random.Random(SEED)
    kinds = sorted(jira_inbound.SUPPORTED) + ["comment_updated", "worklog_created", "brand_new_event"]
    mutate = Mutator(rng, JIRA, kinds, "webhookEvent")

    def deliveries() -> Iterator[tuple[str, str, bytes, dict[str, str]]]:
        for n in range(PER_PRODUCT):
            name, doc = rng.choice(JIRA)
            body = _body(rng, mutate(doc))
            headers = {"Content-Type": "application/json", "X-Hub-Signature": jh.sign(body)}
            if rng.random() < 0.8:  # else the delivery id is the fallback hash of the body's ids
                headers["X-Atlassian-Webhook-Identifier"] = f"fuzz-{n}"
            yield ("jira-dc" if name.startswith("dc_") else "jira-cloud"), name, body, headers

    _check_spread(_run(client, cfg, rng, deliveries()))


def test_fuzz_zendesk(fuzz_client: tuple[FlaskClient, Config]) -> None:
    client, cfg = fuzz_client
    rng = random.Random(SEED + 1)
    kinds = sorted(zendesk_inbound.SUPPORTED) + sorted(zendesk_inbound.IGNORED)[:3] + [
        "zen:event-type:user.created", "zen:event-type:ticket.brand_new"]
    mutate = Mutator(rng, ZENDESK, kinds, "type")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def deliveries() -> Iterator[tuple[str, str, bytes, dict[str, str]]]:
        for n in range(PER_PRODUCT):
            name, doc = rng.choice(ZENDESK)
            doc = {**doc, "id": f"fuzz-{n}"} if "id" in doc and "type" in doc else doc
            body = _body(rng, mutate(doc))
            headers = {"Content-Type": "application/json", **zh.signed_headers(body, timestamp=stamp)}
            if rng.random() < 0.7:
                headers["X-Zendesk-Webhook-Invocation-Id"] = f"inv-{n}"
            yield "zendesk", name, body, headers

    _check_spread(_run(client, cfg, rng, deliveries()))


def test_the_mutator_is_deterministic() -> None:
    def sample(seed: int) -> list[bytes]:
        rng = random.Random(seed)
        mutate: Callable[[Any], Any] = Mutator(rng, JIRA, ["jira:issue_created"], "webhookEvent")
        return [_body(rng, mutate(doc)) for _, doc in JIRA[:5]]

    assert sample(SEED) == sample(SEED)
