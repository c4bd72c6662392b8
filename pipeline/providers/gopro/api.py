"""Facts of the GoPro cloud API (see ../shared/gopro-api.md in the team docs, and docs/providers.md)."""

from __future__ import annotations

import re

from pipeline.providers.base import MediaType

NAME = "gopro"
TOKEN_PATH = "/v1/oauth2/token"
SEARCH_PATH = "/media/search"
USER_PATH = "/media/user"  # the signed-in user (rclone); the night's preflight call
DOWNLOAD_PATH = "/media/{media_id}/download"
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
)
ORDER_BY = "created_at"
READY = "ready"

# Compared case-insensitively: dustin's client uses these spellings, its OpenAPI file lower case.
TYPES: dict[str, MediaType] = {
    "video": MediaType.VIDEO,
    "photo": MediaType.PHOTO,
    "burst": MediaType.BURST,
    "timelapse": MediaType.TIMELAPSE,
    "timelapsevideo": MediaType.TIMELAPSE_VIDEO,
}

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

# Legacy ids are 13 alphanumerics, current ones 24 hex characters; accept any plain alphanumeric id of a sane
# length so a future format does not stop the archive, while keeping separators and dots out of URLs and keys.
MEDIA_ID_PATTERN = re.compile(r"^[A-Za-z0-9]{6,64}$")
