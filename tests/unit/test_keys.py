from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.keys import MAX_FILENAME_CHARS, encode_metadata_value, object_key, safe_filename

WHEN = datetime(2024, 7, 14, 9, 30, tzinfo=UTC)


def test_a_normal_name_is_kept() -> None:
    assert (
        object_key("gopro", "62NzWRrpPXm7o", WHEN, "GX010042.MP4") == "gopro/2024/07/14/62NzWRrpPXm7o/GX010042.MP4"
    )


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..", "62NzWRrpPXm7o"),
        ("a/../../b.mp4", "b.mp4"),
        ("C:\\Users\\x\\clip.mp4", "clip.mp4"),
        ("clip\x00\x1f\n.mp4", "clip.mp4"),
        (".hidden.mp4", "hidden.mp4"),
        ("Été à Noël.MP4", "Ete_a_Noel.MP4"),
        ("名前.mp4", "62NzWRrpPXm7o.mp4"),  # the extension survives a stem that does not
        ("", "62NzWRrpPXm7o"),
    ],
)
def test_hostile_names_become_safe(hostile: str, expected: str) -> None:
    assert safe_filename(hostile, fallback="62NzWRrpPXm7o") == expected


def test_very_long_names_keep_their_extension() -> None:
    name = safe_filename("x" * 5000 + ".MP4", fallback="id")
    assert len(name) <= MAX_FILENAME_CHARS
    assert name.endswith(".MP4")


def test_undated_media_and_bad_ids() -> None:
    assert object_key("gopro", "abcdef", None, "a.mp4") == "gopro/undated/abcdef/a.mp4"
    for bad in ("", "a/b", ".."):
        with pytest.raises(ValueError, match="key segment"):
            object_key("gopro", bad, WHEN, "a.mp4")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=1200))
def test_any_name_gives_a_key_inside_its_media_folder(name: str) -> None:
    key = object_key("gopro", "62NzWRrpPXm7o", WHEN, name)
    prefix = "gopro/2024/07/14/62NzWRrpPXm7o/"
    assert key.startswith(prefix)
    leaf = key[len(prefix) :]
    assert leaf
    assert "/" not in leaf
    assert ".." not in leaf
    assert not leaf.startswith(".")
    assert leaf.isascii()
    assert all(ch.isprintable() for ch in leaf)
    assert len(key.encode()) <= 1024


def test_metadata_values_are_ascii() -> None:
    encoded = encode_metadata_value("Été\n名前.mp4")
    assert encoded.isascii()
    assert "\n" not in encoded


def test_the_longest_key_fits_s3() -> None:
    from pipeline.keys import MAX_KEY_CHARS, S3_MAX_KEY_BYTES
    from pipeline.messages import MAX_MEDIA_ID_CHARS, MAX_PROVIDER_CHARS

    key = object_key(
        "p" * MAX_PROVIDER_CHARS, "m" * MAX_MEDIA_ID_CHARS, datetime(2024, 5, 1, tzinfo=UTC), "a" * 9999 + ".mp4"
    )
    assert len(key.encode()) <= MAX_KEY_CHARS <= S3_MAX_KEY_BYTES
