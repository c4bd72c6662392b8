"""Where a medium lands in S3: `{provider}/{yyyy}/{mm}/{dd}/{media_id}/{safe_filename}`.

Why sanitise: a filename comes from the cloud and could hold separators, `..`, control characters or a thousand
characters; as a key it must stay inside its media folder, be readable by every S3 tool, and fit S3's 1,024-byte
limit. The original name is kept (percent-encoded, since S3 metadata travels in HTTP headers) in the metadata.
"""

from __future__ import annotations

import re
import unicodedata
import urllib.parse
from datetime import datetime

from pipeline.messages import MAX_MEDIA_ID_CHARS, MAX_PROVIDER_CHARS

# The project's one limit on a filename as archived: the last segment of the key, which `aws s3 sync` also turns
# into a local file name. 150 ASCII characters stay under the 255-byte file-name limit of common filesystems and
# keep the whole key far under S3's 1,024 bytes: the rest of the layout is at most 32 (provider) + 10 (date) + 128
# (media id) + 3 slashes and one before the name = 174 characters (see `MAX_KEY_CHARS`). The message carries the
# provider's longer original name (`messages.MAX_ORIGINAL_FILENAME_CHARS`); it is kept in metadata, not the key.
MAX_FILENAME_CHARS = 150
S3_MAX_KEY_BYTES = 1024
MAX_KEY_CHARS = MAX_PROVIDER_CHARS + len("yyyy/mm/dd") + MAX_MEDIA_ID_CHARS + 4 + MAX_FILENAME_CHARS
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DOTS = re.compile(r"[_-]*\.[._-]*")  # any run with a dot becomes one dot: no ".." survives
_FILLER = re.compile(r"[_-]{2,}")
UNDATED = "undated"


def safe_filename(filename: str, *, fallback: str) -> str:
    """An ASCII name of letters, digits, `.`, `_` and `-`, never hidden, never a path, at most 150 chars."""
    text = unicodedata.normalize("NFKD", filename or "")
    text = text.encode("ascii", "ignore").decode("ascii")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]  # a path keeps only its last part
    text = _UNSAFE.sub("_", text)
    text = _DOTS.sub(".", text)
    text = _FILLER.sub("_", text)
    stem, dot, ext = text.rpartition(".")
    if dot and ext.strip("_-") and not stem.strip("._-"):
        # Nothing of the stem survived (a name in another script): the fallback keeps the extension.
        text = f"{_UNSAFE.sub('_', fallback).strip('._-') or 'media'}.{ext.strip('_-')}"
    text = text.strip("._-")
    if not text:
        text = _UNSAFE.sub("_", fallback).strip("._-") or "media"
    if len(text) > MAX_FILENAME_CHARS:
        stem, dot, ext = text.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            text = f"{stem[: MAX_FILENAME_CHARS - len(ext) - 1].rstrip('._-')}.{ext}"
        else:
            text = text[:MAX_FILENAME_CHARS].rstrip("._-")
    return text


def object_key(provider: str, media_id: str, captured_at: datetime | None, filename: str) -> str:
    """The S3 key; `media_id` must already be validated by its provider (it is a path segment)."""
    if not media_id or "/" in media_id or media_id in (".", ".."):
        raise ValueError(f"media id {media_id!r} cannot be a key segment")
    date = captured_at.strftime("%Y/%m/%d") if captured_at else UNDATED
    return f"{provider}/{date}/{media_id}/{safe_filename(filename, fallback=media_id)}"


def encode_metadata_value(value: str) -> str:
    """S3 user metadata must be ASCII without control characters: percent-encode anything else."""
    return urllib.parse.quote(value, safe=" ._-/:+@()[]{}")
