"""CRC32C and its combination: the whole-object checksum is only as good as these."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.transfer.checksums import (
    Checksum,
    combine_parts,
    crc32c,
    crc32c_combine,
    crc32c_combine_py,
    from_base64,
    to_base64,
)


def bitwise_crc32c(data: bytes) -> int:
    """The textbook definition, independent of awscrt: reflected, poly 0x82F63B78, init/xorout 0xFFFFFFFF."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_crc32c_check_value():
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value of CRC-32C
    assert crc32c(b"") == 0


@given(st.binary(max_size=300))
def test_crc32c_matches_the_textbook_definition(data: bytes):
    assert crc32c(data) == bitwise_crc32c(data)


@given(st.binary(max_size=2000), st.binary(max_size=2000))
def test_combine_equals_crc_of_the_concatenation(a: bytes, b: bytes):
    whole = crc32c(a + b)
    assert crc32c_combine(crc32c(a), crc32c(b), len(b)) == whole
    assert crc32c_combine_py(crc32c(a), crc32c(b), len(b)) == whole
    assert crc32c(b, crc32c(a)) == whole  # and the running form the sequential path could use


@settings(max_examples=25, deadline=None)
@given(
    st.integers(min_value=0, max_value=1 << 20), st.lists(st.integers(min_value=0, max_value=1 << 18), max_size=8)
)
def test_combining_many_parts_in_order_equals_one_pass(seed: int, cuts: list[int]):
    data = os.urandom(1 << 18)
    bounds = sorted({0, len(data), *cuts})
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)]
    assert combine_parts((crc32c(p), len(p)) for p in pieces) == crc32c(data)


def test_combine_with_large_part_lengths_without_the_data():
    # 16 MiB of zeros, known two ways: combine needs only lengths, so this checks the operator powers.
    zeros = bytes(16 * 1024 * 1024)
    head = b"GoPro"
    assert crc32c_combine_py(crc32c(head), crc32c(zeros), len(zeros)) == crc32c(head + zeros)
    assert crc32c_combine(crc32c(head), crc32c(zeros), len(zeros)) == crc32c(head + zeros)


def test_combine_rejects_negative_lengths():
    with pytest.raises(ValueError, match="len2"):
        crc32c_combine(1, 2, -1)
    with pytest.raises(ValueError, match="len2"):
        crc32c_combine_py(1, 2, -1)


@given(st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_base64_form_round_trips(value: int):
    assert from_base64(to_base64(value)) == value


def test_checksum_value_uses_s3s_base64_of_big_endian_bytes():
    checksum = Checksum.crc32c(0xE3069283)
    assert checksum.value == "4waSgw=="
    assert checksum.hex == "e3069283"
    assert str(checksum) == "crc32c:4waSgw=="
