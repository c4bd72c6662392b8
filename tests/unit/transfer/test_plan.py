"""Part-size arithmetic against S3's limits: 10,000 parts, 5 MiB minimum part, 5 TiB maximum object."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.transfer.plan import (
    GIB,
    MAX_OBJECT_SIZE,
    MAX_PART_SIZE,
    MAX_PARTS,
    MIB,
    MIN_PART_SIZE,
    TIB,
    ObjectTooLarge,
    choose_part_size,
    part_count,
    plan_parts,
)


def test_configured_size_is_kept_when_it_fits():
    assert choose_part_size(4 * GIB, 16 * MIB) == 16 * MIB  # 256 parts
    assert choose_part_size(None, 16 * MIB) == 16 * MIB


def test_part_size_never_below_five_mib():
    assert choose_part_size(100 * MIB, 1 * MIB) == MIN_PART_SIZE
    assert choose_part_size(None, 1) == MIN_PART_SIZE


def test_configured_size_is_rounded_up_to_whole_mib():
    assert choose_part_size(10 * GIB, 16 * MIB + 1) == 17 * MIB


def test_part_size_grows_so_the_object_fits_ten_thousand_parts():
    size = 200 * GIB  # 16 MiB parts would need 12,800
    part_size = choose_part_size(size, 16 * MIB)
    assert part_size == 21 * MIB
    assert part_count(size, part_size) <= MAX_PARTS
    assert part_count(size, part_size - MIB) > MAX_PARTS  # and it is the smallest whole-MiB size that fits


def test_five_tib_fits():
    part_size = choose_part_size(MAX_OBJECT_SIZE, 16 * MIB)
    assert part_size % MIB == 0
    assert part_size <= MAX_PART_SIZE
    assert part_count(5 * TIB, part_size) <= MAX_PARTS


def test_more_than_five_tib_is_refused():
    with pytest.raises(ObjectTooLarge):
        choose_part_size(MAX_OBJECT_SIZE + 1, 16 * MIB)


def test_nonsense_is_refused():
    with pytest.raises(ValueError, match="positive"):
        choose_part_size(10, 0)
    with pytest.raises(ValueError, match="size"):
        choose_part_size(-1, 16 * MIB)
    with pytest.raises(ValueError, match="limit"):
        choose_part_size(None, 6 * GIB)


@given(
    st.integers(min_value=0, max_value=MAX_OBJECT_SIZE),
    st.integers(min_value=1, max_value=512 * MIB),
)
def test_any_size_fits_in_whole_mib_parts_of_at_least_the_configured_size(size: int, configured: int):
    part_size = choose_part_size(size, configured)
    assert part_size % MIB == 0
    assert part_size >= max(configured, MIN_PART_SIZE)
    assert MIN_PART_SIZE <= part_size <= MAX_PART_SIZE
    assert part_count(size, part_size) <= MAX_PARTS
    smaller = part_size - MIB
    assert smaller < max(configured, MIN_PART_SIZE) or part_count(size, smaller) > MAX_PARTS


@given(st.integers(min_value=0, max_value=200 * MIB), st.sampled_from([5 * MIB, 8 * MIB, 16 * MIB]))
def test_parts_cover_the_object_exactly_once(size: int, part_size: int):
    parts = plan_parts(size, part_size)
    assert [p.number for p in parts] == list(range(1, len(parts) + 1))
    position = 0
    for part in parts:
        assert part.start == position
        position += part.length
    assert position == size
    assert all(p.length == part_size for p in parts[:-1])
    assert parts[-1].end == size - 1
