"""Hostile input: SQS bodies, media ids, filenames, provider JSON and download URLs chosen by an adversary.

What must hold whatever arrives: a download is fetched only over https from the allowed hosts (plain http only to
the simulator's loopback host, only in local mode), redirects are refused, a bad record never stalls the others,
and no key escapes its media folder. Property-based (hypothesis) over the pure parts, end to end over the real
stack for the rest.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import urllib3.util
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devtools.gopro_simulator import MIB
from pipeline.handlers import downloader as downloader_handler
from pipeline.messages import parse
from pipeline.providers.base import DownloadSource, MediaType
from pipeline.providers.errors import ProviderResponseError
from pipeline.providers.gopro.parsing import parse_download, parse_search_page
from pipeline.services.downloader import Disposition
from pipeline.sqs_delivery import SqsDelivery
from pipeline.transfer import S3StreamTransfer, SourceError
from pipeline.transfer.archive import S3FileTransfer
from pipeline.transfer.url_policy import DownloadPolicy, UnsafeDownloadUrl
from tests.chaos import fakes
from tests.chaos.library import library, media_id, standard, video

# Derandomised and without the example database: the same examples on every run and every machine.
HYPOTHESIS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ALLOWED = ("*.gopro-cdn.example", "media.gopro.example")

# --- URLs --------------------------------------------------------------------------------------------------------

_HOSTS = [
    "a.gopro-cdn.example",
    "x.y.gopro-cdn.example",
    "gopro-cdn.example",
    "media.gopro.example",
    "MEDIA.GOPRO.EXAMPLE",
    "media.gopro.example.",
    "media.gopro.example.evil.test",
    "evilmedia.gopro.example",
    "evil.test",
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f.0.0.1",
    "localhost",
    "api.localhost",
    "169.254.169.254",
    "10.0.0.7",
    "192.168.1.1",
    "[::1]",
    "[fd00::1]",
    "[::ffff:127.0.0.1]",
    "0.0.0.0",
    "m\u0435dia.gopro.example",  # a Cyrillic e (U+0435)
    "media.gopro.example%2f.evil.test",
    "media%2egopro.example",
    "",
]
_URLS = st.builds(
    "".join,
    st.tuples(
        st.sampled_from(["https", "http", "HTTPS", "hTTps", "ftp", "file", "", "javascript", "gopher"]),
        st.sampled_from(["://", "://", ":/", ":///", ":\\\\", "//", ":"]),
        st.sampled_from(["", "", "user@", "media.gopro.example@", "a:b@", "@", "x%40y@"]),
        st.sampled_from(_HOSTS),
        st.sampled_from(["", "", ":443", ":80", ":8443", ":0", ":99999", ":x", ":"]),
        st.text(alphabet=[*list("/?#@\\.%:;=&ab09 \t\r\né"), "\x00", "\u2028"], max_size=24),
    ),
)


def _reference_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    """An independent reading of the allow list: exact host names, or `*.domain` for strict subdomains."""
    return any(host == p or (p.startswith("*.") and host.endswith(p[1:]) and host != p[2:]) for p in patterns)


def _where_requests_would_connect(url: str) -> tuple[str, str] | None:
    """(scheme, host) of the connection `requests` would open for `url`; None if it would open none."""
    try:
        prepared = requests.Request("GET", url).prepare()
        parsed = urllib3.util.parse_url(prepared.url)
    except Exception:
        return None
    return (parsed.scheme or "").lower(), (parsed.host or "").lower().strip("[]").rstrip(".")


@pytest.mark.parametrize("local_mode", [False, True])
@pytest.mark.parametrize("allowed", [(), ALLOWED])
@HYPOTHESIS
@given(url=st.one_of(_URLS, st.text(max_size=80)))
@example(url="https://media.gopro.example\\@evil.test/")
@example(url="https://media.gopro.example#@evil.test/")
@example(url="https://evil.test?@media.gopro.example/")
@example(url="http://169.254.169.254/latest/meta-data/")
def test_an_accepted_url_only_ever_reaches_an_allowed_https_host(
    url: str, allowed: tuple[str, ...], local_mode: bool
) -> None:
    policy = DownloadPolicy(allowed_hosts=allowed, local_mode=local_mode)
    if policy.refusal(url) is not None:
        with pytest.raises(UnsafeDownloadUrl):
            policy.check(url)
        return
    target = _where_requests_would_connect(url)
    assert target is not None
    scheme, host = target
    loopback = host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")
    if local_mode and loopback:
        assert scheme in ("http", "https")
        return
    assert scheme == "https", url
    if allowed:
        assert _reference_allowed(host, allowed), url
    else:
        assert not loopback, url
        assert not host.startswith(("10.", "192.168.", "169.254.", "0.")), url


@HYPOTHESIS
@given(
    host=st.sampled_from(["a.gopro-cdn.example", "b.c.gopro-cdn.example", "media.gopro.example"]),
    path=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_./", max_size=40),
    query=st.text(alphabet="abcXYZ0123456789=&-_.%", max_size=60),
)
def test_every_https_link_to_an_allowed_host_is_accepted(host: str, path: str, query: str) -> None:
    url = f"https://{host}/{path}?{query}"
    assert DownloadPolicy(allowed_hosts=ALLOWED).refusal(url) is None
    assert DownloadPolicy(allowed_hosts=ALLOWED).refusal(url.replace("https://", "http://", 1)) is not None


class _RecordingEngine:
    """Stands in for the transfer engine: records whether anything was asked of it."""

    def __init__(self) -> None:
        self.transfers: list[str] = []
        self.s3 = None
        self.session = requests.Session()

    def transfer(self, request: Any, **_: Any) -> Any:
        self.transfers.append(request.url)
        raise AssertionError("the policy should have refused this URL before the engine saw it")


@pytest.mark.parametrize(
    "url",
    [
        "http://cdn.example.com/GX010001.MP4?X-Amz-Signature=abc",  # clear text
        "https://169.254.169.254/latest/meta-data/iam/",  # the instance metadata service
        "https://10.1.2.3/internal",  # inside the VPC
        "ftp://cdn.example.com/x",
    ],
)
def test_the_download_seam_refuses_unsafe_urls_before_the_engine_sees_them(url: str) -> None:
    engine = _RecordingEngine()
    seam = S3FileTransfer(engine, "bucket", policy=DownloadPolicy())  # type: ignore[arg-type]
    source = DownloadSource(url=url, filename="GX010001.MP4", content_type="video/mp4")
    with pytest.raises(UnsafeDownloadUrl, match="refusing download URL"):
        seam(
            source, key="k", metadata={}, deadline=None, resume=None, on_checkpoint=lambda _: None, refresh_url=str
        )
    with pytest.raises(UnsafeDownloadUrl):
        seam.existing("k", "GX010001", source)
    assert engine.transfers == []


def test_a_refreshed_url_is_held_to_the_policy_too() -> None:
    policy = DownloadPolicy(allowed_hosts=ALLOWED)
    seen: list[str] = []

    class Engine(_RecordingEngine):
        def transfer(self, request: Any, *, refresh_url: Any, **_: Any) -> Any:
            seen.append(request.url)
            return refresh_url()  # the engine asks for a fresh link after a 403

    seam = S3FileTransfer(Engine(), "bucket", policy=policy)  # type: ignore[arg-type]
    source = DownloadSource(url="https://a.gopro-cdn.example/x", filename="a.mp4", content_type="video/mp4")
    with pytest.raises(UnsafeDownloadUrl, match="not in ALLOWED_DOWNLOAD_HOSTS"):
        seam(
            source,
            key="k",
            metadata={},
            deadline=None,
            resume=None,
            on_checkpoint=lambda _: None,
            refresh_url=lambda: "https://evil.test/x",
        )
    assert seen == ["https://a.gopro-cdn.example/x"]


# --- redirects ---------------------------------------------------------------------------------------------------


class _Server:
    """A throwaway HTTP server on 127.0.0.1 answering every request with `answer(handler)`."""

    def __init__(self, answer: Any) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(f"GET {self.path}")
                answer(self)

            def do_HEAD(self) -> None:
                outer.hits.append(f"HEAD {self.path}")
                answer(self)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> _Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def internal_service() -> Iterator[_Server]:
    """What a redirect must never reach: it counts every request."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        body = b"secret"
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command == "GET":
            handler.wfile.write(body)

    with _Server(answer) as server:
        yield server


@pytest.mark.integration
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_host_is_refused(aws: Any, internal_service: _Server, status: int) -> None:
    def redirect(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Location", f"{internal_service.url}/latest/meta-data/")
        handler.send_header("Content-Length", str(20 * MIB))
        handler.end_headers()

    s3 = aws.client("s3")
    s3.create_bucket(Bucket="archive", CreateBucketConfiguration={"LocationConstraint": aws.region})
    seam = S3FileTransfer(S3StreamTransfer(s3), "archive", policy=DownloadPolicy(local_mode=True))
    with _Server(redirect) as redirector:
        source = DownloadSource(
            url=f"{redirector.url}/GX010001.MP4",
            head_url=f"{redirector.url}/GX010001.MP4",
            filename="a.mp4",
            content_type="video/mp4",
        )
        assert seam.existing("k", "GX010001", source) is None
        with pytest.raises(SourceError, match="redirect"):
            seam(
                source,
                key="k",
                metadata={},
                deadline=None,
                resume=None,
                on_checkpoint=lambda _: None,
                refresh_url=lambda: source.url,
            )
        assert redirector.hits  # it was asked...
    assert internal_service.hits == []  # ...and what it pointed at never was


# --- SQS bodies, media ids, filenames ----------------------------------------------------------------------------

_GOOD = {
    "schema_version": 1,
    "run_id": "20260101T020000Z-abcd1234",
    "correlation_id": "corr-1",
    "provider": "gopro",
    "media_id": "GX0100017abc",
    "filename": "GX010001.MP4",
    "size": 123,
    "captured_at": "2024-07-14T09:30:00Z",
    "enqueued_at": "2026-01-01T02:00:03.000Z",
    "media_type": "video",
}
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
_HOSTILE_TEXT = st.one_of(
    st.text(max_size=60),
    st.text(min_size=1000, max_size=1300),
    st.sampled_from(["../../etc/passwd", "..", ".", "/", "a/b\\c", "\x00\x01\x1f", "CON", " ", "\u202e4pm.exe"]),
)


def _mutated() -> st.SearchStrategy[str]:
    """A valid body with one field removed, retyped or replaced by hostile text, or extra fields added."""

    def build(field: str, how: str, value: Any, extra: dict[str, Any]) -> str:
        body = dict(_GOOD)
        if how == "drop":
            body.pop(field, None)
        elif how == "set":
            body[field] = value
        body.update(extra)
        return json.dumps(body)

    return st.builds(
        build,
        st.sampled_from(sorted(_GOOD)),
        st.sampled_from(["drop", "set", "keep"]),
        st.one_of(_JSON, _HOSTILE_TEXT),
        st.dictionaries(st.text(max_size=12).filter(lambda k: k not in _GOOD), _JSON, max_size=3),
    )


_BODIES = st.one_of(st.text(max_size=200), _JSON.map(json.dumps), _mutated())


def _record(body: Any, message_id: str = "m-1", receive: str = "1") -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": receive},
        "messageAttributes": {},
    }


class _AppOf:
    """Stands in for the composition root: its downloader is the fake world's."""

    def __init__(self, world: fakes.Collaborators) -> None:
        self.downloader = lambda: world.downloader


def _assert_safe_key(key: str, media_id_: str) -> None:
    parts = key.split("/")
    assert parts[0] == "gopro"
    assert parts[-2] == media_id_
    assert len(parts) in (4, 6)
    assert all(part and part not in (".", "..") for part in parts), key
    name = parts[-1]
    assert name.isascii(), key
    assert not name.startswith("."), key
    assert all(c.isalnum() or c in "._-" for c in name), key
    assert len(key.encode()) <= 1024


@HYPOTHESIS
@given(body=_BODIES)
def test_any_body_is_archived_or_dead_lettered_never_raised(body: str) -> None:
    world = fakes.downloader()
    outcome = world.downloader.process(SqsDelivery.from_record(_record(body)))
    dead = [m for m in world.sqs.sent if m["QueueUrl"] == "dlq"]
    if outcome.disposition is Disposition.POISON:
        assert len(dead) == 1
        assert dead[0]["MessageAttributes"]["poison_reason"]["StringValue"]
        assert world.transfer.calls == []
        assert world.state.claims == []
    else:
        assert outcome.disposition is Disposition.SYNCED
        assert dead == []
        message = parse(body)  # it was a valid message
        (call,) = world.transfer.calls
        _assert_safe_key(call["key"], message.media_id)


@HYPOTHESIS
@given(media_id_=st.text(max_size=80))
def test_a_media_id_outside_the_alphabet_never_reaches_a_key(media_id_: str) -> None:
    world = fakes.downloader()
    outcome = world.downloader.process(
        SqsDelivery.from_record(_record(json.dumps({**_GOOD, "media_id": media_id_})))
    )
    if world.transfer.calls:
        _assert_safe_key(world.transfer.calls[0]["key"], media_id_)
        assert media_id_.isascii()
        assert media_id_.isalnum()
    else:
        assert outcome.disposition is Disposition.POISON


@HYPOTHESIS
@given(filename=_HOSTILE_TEXT)
def test_a_provider_filename_becomes_a_safe_key_and_ascii_metadata(filename: str) -> None:
    world = fakes.downloader()
    world.provider.filename = filename
    outcome = world.downloader.process(SqsDelivery.from_record(_record(json.dumps(_GOOD))))
    assert outcome.disposition is Disposition.SYNCED
    (call,) = world.transfer.calls
    _assert_safe_key(call["key"], _GOOD["media_id"])
    for value in call["metadata"].values():
        assert all(0x20 <= ord(c) < 0x7F for c in value), value


@HYPOTHESIS
@given(bad=st.lists(st.one_of(_BODIES.map(_record), _JSON), min_size=1, max_size=6), position=st.integers(0, 6))
def test_the_consumer_never_stalls_on_a_bad_record(
    monkeypatch: pytest.MonkeyPatch, bad: list[Any], position: int
) -> None:
    world = fakes.downloader()
    good = _record(json.dumps(_GOOD), message_id="the-good-one")
    records = [*bad[:position], good, *bad[position:]]
    response = downloader_handler.process_event(_AppOf(world), {"Records": records})  # type: ignore[arg-type]
    assert _GOOD["media_id"] in world.state.completed  # processed whatever surrounded it
    assert {"itemIdentifier": "the-good-one"} not in response["batchItemFailures"]


def test_a_record_whose_dead_lettering_fails_is_retried_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    world = fakes.downloader()

    def refuse(**kwargs: Any) -> Any:
        if kwargs["QueueUrl"] == "dlq":
            raise RuntimeError("SQS unavailable")
        return {"MessageId": "x"}

    world.sqs.send_message = refuse  # type: ignore[method-assign]
    records = [_record("not json", message_id="poison"), _record(json.dumps(_GOOD), message_id="good")]
    response = downloader_handler.process_event(_AppOf(world), {"Records": records})  # type: ignore[arg-type]
    assert response["batchItemFailures"] == [{"itemIdentifier": "poison"}]
    assert _GOOD["media_id"] in world.state.completed


# --- provider JSON -----------------------------------------------------------------------------------------------

_LINK = {
    "url": "https://a.gopro-cdn.example/x?sig=1",
    "head": "https://a.gopro-cdn.example/x?sig=2",
    "label": "source",
}
_DESCRIPTOR = {"filename": "GX010001.MP4", "_embedded": {"files": [], "variations": [_LINK], "sprites": []}}
_PAGE = {
    "_pages": {"current_page": 1, "per_page": 30, "total_items": 1, "total_pages": 1},
    "_embedded": {
        "errors": [],
        "media": [{"id": "abc123def", "type": "Video", "filename": "a.mp4", "file_size": 1}],
    },
}


def _mutate_json(document: Any) -> st.SearchStrategy[Any]:
    """`document` with values anywhere in it replaced by arbitrary JSON, keys dropped, or keys added."""

    def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        found = [prefix]
        if isinstance(node, dict):
            for key, value in node.items():
                found += paths(value, (*prefix, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                found += paths(value, (*prefix, index))
        return found

    def apply(path: tuple[Any, ...], how: str, value: Any) -> Any:
        copy = json.loads(json.dumps(document))
        if not path:
            return value
        parent = copy
        for step in path[:-1]:
            parent = parent[step]
        if how == "drop" and isinstance(parent, dict):
            parent.pop(path[-1])
        elif how == "extra" and isinstance(parent, dict):
            parent["unexpected"] = value
        else:
            parent[path[-1]] = value
        return copy

    return st.builds(apply, st.sampled_from(paths(document)), st.sampled_from(["drop", "set", "extra"]), _JSON)


@HYPOTHESIS
@given(payload=_mutate_json(_DESCRIPTOR))
def test_a_download_descriptor_parses_or_is_refused_with_a_typed_error(payload: Any) -> None:
    try:
        plan = parse_download(payload, media_id="abc123def", media_type=MediaType.VIDEO)
    except ProviderResponseError:
        return
    for source in plan.files:
        assert isinstance(source.url, str)
        assert source.url.startswith(("https://", "http://"))
        assert isinstance(source.filename, str)


@HYPOTHESIS
@given(payload=_mutate_json(_PAGE))
@example(payload={"_pages": {"total_pages": "²"}, "_embedded": {"errors": [], "media": []}})
def test_a_listing_page_parses_or_is_refused_with_a_typed_error(payload: Any) -> None:
    try:
        page = parse_search_page(payload, requested_page=1)
    except ProviderResponseError:
        return
    assert all(isinstance(item.media_id, str) for item in page.items)


# --- end to end over the real stack ------------------------------------------------------------------------------


@pytest.mark.integration
def test_hostile_messages_in_the_real_queue_never_stall_the_good_ones(chaos) -> None:
    run = chaos(standard(), name="hostile SQS bodies among good ones", family="hostile input")
    sqs = run.client("sqs")
    hostile = [
        "",
        "not json at all",
        "[1, 2, 3]",
        json.dumps({**_GOOD, "media_id": "../../../etc"}),
        json.dumps({**_GOOD, "media_id": "a" * 200}),
        json.dumps({**_GOOD, "filename": "x" * 5000}),
        json.dumps({**_GOOD, "schema_version": 99}),
        json.dumps({**_GOOD, "provider": "ftp"}),
        json.dumps({**_GOOD, "size": "huge"}),
        json.dumps({**_GOOD, "run_id": "has spaces\nand a newline"}),
        '{"schema_version": 1, "schema_version": 1}',
        json.dumps({"deeply": [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]}),
        "[" * 5000 + "]" * 5000,
    ]

    def interleave(pipeline: Any) -> None:
        for body in hostile:
            sqs.send_message(QueueUrl=run.settings.queue_url, MessageBody=body or " ")

    result = run.night(after_listing=interleave)
    assert run.verify().completed == 3
    assert result.dlq_depth == len(hostile)  # each in the DLQ once, with its reason, never retried
    assert result.consumer_stats.failed_records == 0


@pytest.mark.integration
def test_a_download_link_off_the_allowed_hosts_fails_that_video_alone(
    chaos, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = chaos(
        library(video(1, 6 * MIB), video(2, 600 * 1024)),
        name="download link to a host off the allow list",
        family="hostile input",
    )
    provider = run.app.provider()
    resolve = provider.resolve_download
    victim = media_id(1)

    def hijacked(media_id_: str, **kwargs: Any) -> Any:
        plan = resolve(media_id_, **kwargs)
        if media_id_ != victim:
            return plan
        evil = DownloadSource(url="https://169.254.169.254/latest/meta-data/", filename="a.mp4", content_type="x")
        return type(plan)(media_id=plan.media_id, filename=plan.filename, files=(evil,))

    monkeypatch.setattr(provider, "resolve_download", hijacked)
    result = run.night()
    outcome = run.verify()
    assert (outcome.completed, outcome.failed) == (1, 1)
    record = run.app.state.media.get("gopro", victim)
    assert "refusing download URL" in record.last_error
    assert "internal address" in record.last_error
    assert result.dlq_depth == 1


@pytest.mark.integration
def test_outside_local_mode_the_simulators_plain_http_links_are_refused(chaos) -> None:
    from dataclasses import replace

    run = chaos(
        library(video(1, 600 * 1024)), name="production policy vs. plain-http links", family="hostile input"
    )
    run.app.settings = replace(run.app.settings, local_mode=False)  # what a deployed downloader runs with
    run.night()
    outcome = run.verify()
    assert outcome.failed == 1
    assert run.sim.requests_to("content") == []  # not one byte requested in clear text
    assert "plain http" in (run.app.state.media.get("gopro", media_id(1)).last_error or "")
