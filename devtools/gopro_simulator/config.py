"""Construction settings of the simulator, and the size/bandwidth parser its CLI shares with tests.

Why one frozen dataclass: a test states every behaviour it depends on in one place (`SimulatorConfig(videos=3,
bandwidth=4 * MB, faults=(RateLimit(count=2),))`), and `with_overrides` lets fixtures take keyword arguments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any

from devtools.gopro_simulator.faults import FaultRule
from devtools.gopro_simulator.library import SimMedia

KB = 1000
MB = 1000 * KB
GB = 1000 * MB
KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

_UNITS = {
    "": 1,
    "b": 1,
    "k": KB,
    "kb": KB,
    "kib": KIB,
    "m": MB,
    "mb": MB,
    "mib": MIB,
    "g": GB,
    "gb": GB,
    "gib": GIB,
    "t": 1000 * GB,
    "tb": 1000 * GB,
    "tib": 1024 * GIB,
}


def parse_size(text: str | int) -> int:
    """`5MB` -> 5_000_000, `2GiB` -> 2**31, `1.5M` -> 1_500_000, `123` -> 123 (decimal units, binary with `i`)."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*(?:/s)?\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (examples: 500KB, 5MB, 2GiB)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything a simulator instance does, fixed at construction (faults and a few settings change at runtime).

    Credentials left as None are generated from `seed` (fake, printable values).
    """

    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    seed: int = 1

    # Library: `media` (explicit) replaces generation entirely.
    media: tuple[SimMedia, ...] | None = None
    videos: int = 4  # Video and TimeLapseVideo media, some chaptered
    photos: int = 2  # Photo, Burst and TimeLapse media
    video_size: int = 2 * MB  # each video file (a chapter counts as one file)
    photo_size: int = 200 * KB  # each photo (a burst has several)
    size_jitter: float = 0.0  # 0.1: sizes vary +-10 %
    chaptered_fraction: float = 0.25
    timelapse_video_fraction: float = 0.2
    burst_fraction: float = 0.3
    timelapse_fraction: float = 0.2
    legacy_id_fraction: float = 0.15
    null_size_fraction: float = 0.1
    empty_filename_fraction: float = 0.1
    not_ready_fraction: float = 0.0

    # Authentication.
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    username: str = "rider@example.com"
    password: str | None = None
    user_id: str | None = None
    access_token_ttl: int = 3600
    initial_access_token_expired: bool = False
    rotate_refresh_tokens: bool = False
    blacklisted_refresh_tokens: tuple[str, ...] = ()
    blacklist_status: int = 401

    # Listing and descriptors.
    repeat_last_item: bool = False
    honour_ranges: bool = True  # False: `created_range` & co. are ignored like unknown parameters (backstop tests)
    default_per_page: int = 30
    max_per_page: int = 100
    require_accept_on_download: bool = False

    # Content links.
    url_ttl: int = 3600
    content_host: str | None = None  # e.g. "localhost": content links on another host name than the API
    strict_signed_method: bool = True  # a `url` link refuses HEAD and a `head` link refuses GET, as S3 does
    bandwidth: int | None = None  # bytes/s per response

    faults: tuple[FaultRule, ...] = ()
    log_requests: bool = False  # print one redacted line per request to stderr (the CLI's --verbose)

    def with_overrides(self, **changes: Any) -> SimulatorConfig:
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"unknown simulator settings: {', '.join(sorted(unknown))}")
        if "media" in changes and changes["media"] is not None:
            changes["media"] = tuple(changes["media"])
        if "faults" in changes:
            changes["faults"] = tuple(changes["faults"])
        return replace(self, **changes)
