"""Facts of the GoPro cloud API (see ../shared/gopro-api.md in the team docs, and docs/providers.md)."""

from __future__ import annotations

import re

from pipeline.providers.base import MediaType

NAME = "gopro"
TOKEN_PATH = "/v1/oauth2/token"
SEARCH_PATH = "/media/search"
USER_PATH = "/media/user"  # the signed-in user (rclone); the night's preflight call
DOWNLOAD_PATH = "/media/{media_id}/download"
# HiLight moments of one medium (issue 14; the answer's shape is read leniently: no source documents it fully).
MOMENTS_PATH = "/media/{media_id}/moments"
MEDIA_ACCEPT = "application/vnd.gopro.jk.media+json; version=2.0.0"
PASSWORD_SCOPE = "root root:channels public me upload media_library_beta live"
COOKIE_TOKEN = "gp_access_token"
COOKIE_USER = "gp_user_id"

LIST_FIELDS = (
    "id",
    "filename",
    "file_extension",
    "file_size",
    "type",
    "captured_at",
    "created_at",
    "ready_to_view",
    "item_count",
    "camera_model",
    # Kept in the sidecar only, read tolerantly (an impossible value is null, never a skipped medium).
    "content_title",
    "width",
    "height",
    "source_duration",
    "moments_count",
)
ORDER_BY = "created_at"
READY = "ready"

# All 16 `type` values (dustin/gopro-plus `MediumType`, plus `Edit` from rclone), compared case-insensitively
# with `_` and `-` dropped. Camera-recorded video kinds are videos; Continuous is a series of photos like a burst;
# edits made in the app are archived from their `baked_source` render. Audio is listed but never archived.
TYPES: dict[str, MediaType] = {
    "video": MediaType.VIDEO,
    "burstvideo": MediaType.VIDEO,
    "loopedvideo": MediaType.VIDEO,
    "looped": MediaType.VIDEO,
    "chaptered": MediaType.VIDEO,
    "livestream": MediaType.VIDEO,
    "externalvideo": MediaType.VIDEO,
    "session": MediaType.VIDEO,
    "timelapsevideo": MediaType.TIMELAPSE_VIDEO,
    "photo": MediaType.PHOTO,
    "burst": MediaType.BURST,
    "continuous": MediaType.BURST,
    "timelapse": MediaType.TIMELAPSE,
    "multiclipedit": MediaType.EDIT,
    "edit": MediaType.EDIT,
    "audio": MediaType.AUDIO,
}

# Every `ready_to_view` value the public clients have seen. Only `ready` is reliably downloadable; `failure` will
# not become ready by waiting; every other one (and any value not seen yet) is a medium still on its way.
READY_STATES = frozenset(
    {
        "ready",
        "failure",
        "loading",
        "registered",
        "transcoding",
        "processing",
        "uploading",
        "pretranscoding",
        "updating",
        "live",
        "stabilizing",
    }
)
FAILED_STATE = "failure"

# Only for media listed without a `type` (lenient parsing): what their file extension says they are.
EXTENSION_TYPES: dict[str, MediaType] = {
    "mp4": MediaType.VIDEO,
    "mov": MediaType.VIDEO,
    "360": MediaType.VIDEO,
    "jpg": MediaType.PHOTO,
    "jpeg": MediaType.PHOTO,
    "gpr": MediaType.PHOTO,
}

SOURCE_LABEL = "source"
BAKED_SOURCE_LABEL = "baked_source"  # edits (MultiClipEdit) keep their original under this label

# Server-side date filter of the search (`<ISO>,<ISO>`, upload time); a malformed value answers 500.
CREATED_RANGE = "created_range"
# A listed size above the largest object S3 takes is no GoPro medium: one unreadable entry, skipped and reported.
MAX_MEDIUM_BYTES = 5 * 1024**4
# Chapters or frames of one medium beyond this are an impossible `item_count`.
MAX_ITEM_COUNT = 10_000
# Sidecar facts beyond these are impossible and read as null: a title or camera name longer than this is cut.
MAX_TITLE_CHARS = 512
MAX_CAMERA_CHARS = 128
MAX_DIMENSION = 100_000  # pixels, width or height
MAX_DURATION_MS = 7 * 86_400_000  # `source_duration`, milliseconds (the unit is *unconfirmed*: one source)
MAX_MOMENTS = 10_000
# Listed times outside these years are impossible (and one far in the future would push the mark past it).
EARLIEST_YEAR, LATEST_YEAR = 1990, 2100
# A page shorter than `_pages` promises is asked again this many times before the walk is called incomplete.
SHORT_PAGE_RETRIES = 2

# Legacy ids are 13 alphanumerics, current ones 24 hex characters; accept any plain alphanumeric id of a sane
# length so a future format does not stop the archive, while keeping separators and dots out of URLs and keys.
MEDIA_ID_PATTERN = re.compile(r"^[A-Za-z0-9]{6,64}$")
