"""Small simulated libraries for chaos scenarios: a few videos, multipart and single-PUT, one chaptered.

Why explicit media: the invariants compute each video's S3 keys and source hash from the simulator's own model,
so every medium needs a known filename, capture date and size; and a scenario names its victim by position.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devtools.gopro_simulator import MIB, MediaType, SimMedia, SimulatorConfig

START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def media_id(index: int, tag: str = "c") -> str:
    """Valid GoPro-alphabet ids, distinct per scenario tag."""
    return f"{tag}{index:04d}chaos{index * 7919 % 100000:05d}"


def video(index: int, size: int, *, items: int = 1, tag: str = "c", ready: str = "ready") -> SimMedia:
    return SimMedia(
        id=media_id(index, tag),
        type=MediaType.VIDEO,
        size=size,
        items=items,
        filename=f"GX{index:02d}{index * 37 % 10000:04d}.MP4",
        captured_at=START + timedelta(days=index * 3),
        created_at=START + timedelta(days=index * 3, hours=2),
        ready_to_view=ready,
    )


def library(*media: SimMedia, seed: int = 7, **config: object) -> SimulatorConfig:
    return SimulatorConfig(media=list(media), seed=seed, **config)  # type: ignore[arg-type]


def standard(*, tag: str = "c", **config: object) -> SimulatorConfig:
    """Three videos: two multipart (3 and 2 parts of 5 MiB) and one single PUT."""
    return library(
        video(1, 11 * MIB, tag=tag),
        video(2, 6 * MIB, tag=tag),
        video(3, 700 * 1024, tag=tag),
        **config,
    )
