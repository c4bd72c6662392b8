"""A GoPro cloud simulator: a real HTTP server on 127.0.0.1 for tests, benchmarks and the local runtime.

Why: the real GoPro API is unofficial, rate-unknown and holds someone's private media, so nothing in CI or on a
laptop may depend on it. The simulator speaks the same endpoints and JSON shapes as /work/shared/gopro-api.md
(the project's reference), serves any amount of deterministic content without disk, and injects every failure
the pipeline must survive. It is a dev/test tool and never ships in the Lambda package.

Endpoints (API, auth and content all on `sim.base_url`; the real service has API and auth on
https://api.gopro.com and content on pre-signed S3/CloudFront links):

- `POST /v1/oauth2/token` (form): grants `password` and `refresh_token`; answers `access_token`, `token_type`,
  `expires_in`, `refresh_token`, `resource_owner_id`. Wrong client: `401 {"error":"invalid_client"}`;
  blacklisted refresh token: `{"error":"token_blacklisted"}` with `config.blacklist_status` (401 by default);
  unknown or rotated-out refresh token / bad password: `400 {"error":"invalid_grant"}`.
- `GET /media/search`: needs `Accept: application/vnd.gopro.jk.media+json; version=2.0.0` (or the web app's
  `application/vnd.gopro.jk.media.search+json`): missing or unknown, 406 *before* authentication; another
  `version=`, 410 Gone. Then `Authorization: Bearer <token>` or cookies `gp_access_token` (+ optional
  `gp_user_id`) (401 otherwise). Query `fields`, `order_by` (`created_at` | `captured_at`, newest first),
  `per_page` (capped at 100), `page`, `processing_states`, `type`, `created_range` / `captured_range` /
  `updated_range` (`<ISO>,<ISO>`, both ends inclusive, either may be empty; a malformed value answers 500);
  unknown parameters are ignored. Answers `{"_pages": {...}, "_embedded": {"errors": [], "media": [...]}}`.
  Every one of the 16 `type` values and 11 `ready_to_view` values can be listed (`ALL_TYPES`, `READY_STATES`,
  `every_type_library()`).
- `GET /media/user`: the signed-in user (`id`, `email`); the pipeline's preflight call. Same authentication.
- `GET /media/{id}/download`: the `fileinfo` descriptor (`filename`, `_embedded.files/variations/sprites/
  sidecar_files`), every entry with a signed `url` (GET) and `head` (HEAD) link; 404 for deleted/unknown.
  Videos: `files` holds ONE proxy, one `source` variation per item (with `item_number` when chaptered) plus a
  `concat` for chaptered ones. Bursts and TimeLapses: one `files` entry per original photo, the single `source`
  variation is a cover. Photos: `files[0]` and the `source` variation are the original; `raw=True` adds one
  `raw_photo` sidecar (.gpr) per photo. Edits (MultiClipEdit): `baked_source`, descriptor `filename` "".
  `available: false` entries (`stale_source=True`) must be skipped. Media that are not `ready` have an empty
  descriptor.
- `GET /media/{id}/moments`: the HiLight moments, `{"_embedded": {"moments": [{"id", "time"}]}}` (`time` in ms,
  `SimMedia.moments`); the listing's `moments_count` is their number. 404 for deleted/unknown.
- `GET|HEAD /content/{id}/{rendition}/{item}.{ext}?Expires=..&Signature=..&Key-Pair-Id=..` (CloudFront style):
  deterministic bytes served as `binary/octet-stream`; checks the signature (method included) and `Expires`
  (403 XML when bad or expired); ignores any Authorization header; `Range: bytes=a-b | a- | -n` gives 206 +
  `Content-Range`, 416 when unsatisfiable, 200 + whole body without Range;
  `ETag`, `Accept-Ranges: bytes`, `Last-Modified`.

Python API::

    from devtools.gopro_simulator import MB, GoProSimulator, MediaType, SimMedia, SimulatorConfig

    with GoProSimulator(SimulatorConfig(videos=3, photos=2, video_size=5 * MB, seed=7)) as sim:
        sim.base_url                      # "http://127.0.0.1:<port>" (API and auth)
        sim.content_base_url              # host of the content links (`content_host` may differ)
        sim.credentials                   # SimCredentials(client_id, client_secret, refresh_token,
                                          #   access_token, user_id, username, password) - current ones
        sim.env()                         # GOPRO_API_URL/AUTH_URL/CLIENT_ID/CLIENT_SECRET/REFRESH_TOKEN
        sim.library                       # list[SimMedia] present now (copies)
        sim.media(media_id)               # one SimMedia, deleted ones included
        sim.source_size(media_id, item=1) / sim.source_bytes(...) / sim.source_sha256(...)
        sim.content_size(media_id, "proxy", item=1) / content_bytes(...) / content_sha256(...)
        sim.add_media(SimMedia(...)); sim.delete_media(media_id); sim.set_ready_state(media_id, "ready")
        sim.issue_access_token()          # a fresh valid access token (pasted-cookie mode)
        sim.descriptor(sim.media(media_id))   # the download JSON with fresh links, without HTTP
        sim.signed_url(path, method="GET")    # sign a content path yourself
        sim.advance_clock(3600)           # token and link expiry without sleeping
        sim.requests / sim.requests_to("content") / sim.clear_requests()   # list[RequestRecord]
        sim.faults.rate_limit(count=2, retry_after=1, endpoint=None)        # see Faults

    GoProSimulator(config=None, **overrides) also takes config fields as keywords; start()/stop() work too.

`SimMedia(id, type="Video", size=1_000_000, items=1, item_sizes=None, filename=None, ready_to_view="ready",
file_size_known=True, file_size_offset=0, captured_at=None, created_at=None, ...)` builds exact media for
`SimulatorConfig(media=[...])`; without `media` a seeded mix is generated from `videos`, `photos`, `video_size`,
`photo_size` and the `*_fraction` settings (chaptered videos, TimeLapseVideos, bursts, TimeLapses, legacy
13-character ids, null `file_size`, empty `filename`, not-ready media).

Content model: rendition `source` item k is the original file k (for bursts the photo behind `files[k-1]`);
`proxy`, `cover`, `concat`, `high_res_proxy_mp4`, `mp4_low`, `sprite`, `zip` are derived objects with their own
bytes, so archiving the wrong one shows up as a checksum mismatch.

Faults (`sim.faults`, thread-safe; the same rule objects go in `SimulatorConfig(faults=(...))`):

- `rate_limit(count=1, retry_after=1, endpoint=None)` -> 429 + `Retry-After`  (rule `RateLimit`)
- `server_errors(count=1, status=503, endpoint=None)` -> 5xx with an HTML body  (rule `ServerError`)
- `cut_connection(after_bytes, count=1, media_id=None, reset=False)` -> content body cut  (`CutConnection`)
- `slow_first_byte(delay, count=1, endpoint=None, media_id=None)`  (`SlowFirstByte`)
- `malformed_listing(kind, count=1, page=None)` with `ListingFault.HTML_502 | TRUNCATED_JSON | MISSING_FIELDS |
  WRONG_TYPES | EMPTY_PAGE | EMBEDDED_ERRORS`  (`MalformedListing`)
- `ignore_range(count=1, media_id=None)` -> 200 + whole body to a ranged request  (`IgnoreRange`)
- `transient_not_found(count=1, media_id=None)` -> the descriptor of a live medium answers 404  (`NotFound`)
- `block(count=1, endpoint=None)` -> CloudFront's HTML `403 Request blocked` page, token endpoint included
  (`Blocked`)
- `refuse_vendor_version(status=410, count=1, endpoint=None)` -> 410 (version gone) or 406 (Accept not served)
  (`VendorRefusal`)
- `short_pages(items=12, count=1, page=None)` -> a listing page with fewer media than `_pages` promises
  (`ShortPage`)
- `absurd_value(kind=AbsurdKind.HUGE_SIZE | NEGATIVE_SIZE | BAD_DATE | BAD_ID, media_id=None, count=None)` ->
  one listed medium with an impossible value, on every listing until cleared  (`AbsurdValue`)
- `expire_access_tokens()`, `blacklist_refresh_token(token=None)`, `delete_media(id)`, `set_ready_state(id, s)`
- `set_bandwidth(bytes_per_second | None)`, `set_url_ttl(seconds)`, `set_repeat_last_item(bool)`
- `add(rule)`, `active`, `clear()`

`endpoint` is one of `token`, `search`, `download`, `content`, `user`, `moments`; None means every API endpoint
but moments (and not content) for 429/5xx, and every endpoint for a slow first byte. A `ServerError` with a
`media_id` fails that medium's calls only. `count=None` keeps a rule until `clear()`.

Run on its own::

    python -m devtools.gopro_simulator --port 8765 --videos 12 --photos 2 --video-size 5MB --seed 1 \\
        [--bandwidth 10MB] [--client-id X --client-secret Y --refresh-token Z] \\
        [--every-type] [--short-pages N] [--absurd-size]
"""

from devtools.gopro_simulator.config import GB, GIB, KB, KIB, MB, MIB, SimulatorConfig, parse_size
from devtools.gopro_simulator.faults import (
    AbsurdKind,
    AbsurdValue,
    Blocked,
    CutConnection,
    Endpoint,
    FaultRule,
    Faults,
    IgnoreRange,
    ListingFault,
    MalformedListing,
    NotFound,
    RateLimit,
    ServerError,
    ShortPage,
    SlowFirstByte,
    VendorRefusal,
)
from devtools.gopro_simulator.library import ALL_TYPES, READY_STATES, MediaType, SimMedia, every_type_library
from devtools.gopro_simulator.server import (
    ACCEPT_MEDIA_TYPE,
    GoProSimulator,
    RequestRecord,
    SimCredentials,
    token_fingerprint,
)

ACCEPT_HEADER = "application/vnd.gopro.jk.media+json; version=2.0.0"

__all__ = [
    "ACCEPT_HEADER",
    "ACCEPT_MEDIA_TYPE",
    "ALL_TYPES",
    "GB",
    "GIB",
    "KB",
    "KIB",
    "MB",
    "MIB",
    "READY_STATES",
    "AbsurdKind",
    "AbsurdValue",
    "Blocked",
    "CutConnection",
    "Endpoint",
    "FaultRule",
    "Faults",
    "GoProSimulator",
    "IgnoreRange",
    "ListingFault",
    "MalformedListing",
    "MediaType",
    "NotFound",
    "RateLimit",
    "RequestRecord",
    "ServerError",
    "ShortPage",
    "SimCredentials",
    "SimMedia",
    "SimulatorConfig",
    "SlowFirstByte",
    "VendorRefusal",
    "every_type_library",
    "parse_size",
    "token_fingerprint",
]
