"""The manifest's contract (see docs/operations.md, "The http-manifest provider").

A manifest is JSON, either a list of media or an object `{"media": [...], "next": "<url of the next page>"}`
(`next` may be relative to the manifest's URL; absent or null on the last page). A medium is
`{"id", "filename", "size", "captured_at", "url"}` plus an optional `type` (`video` by default; any value of
`pipeline.providers.base.MediaType`). `url` is fetched without credentials, like GoPro's pre-signed links.
"""

from __future__ import annotations

import re

NAME = "http-manifest"

MEDIA_KEY = "media"
NEXT_KEY = "next"
ID = "id"
FILENAME = "filename"
SIZE = "size"
CAPTURED_AT = "captured_at"
URL = "url"
TYPE = "type"

# Ids become a DynamoDB key part, an S3 key segment and a message field: the message schema's own alphabet.
MEDIA_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# A manifest that links to itself, or an endless chain, must end.
MAX_PAGES = 10_000
