"""Listing cursors against a real moto server."""

from __future__ import annotations

import pytest

from pipeline import resources
from pipeline.state import MediaStatus, StateStore
from tests.integration.state.conftest import TABLE
from tests.integration.state.support import PROVIDER

pytestmark = pytest.mark.integration


# --- cursors ---------------------------------------------------------------------------------------------------


def test_cursor_round_trip(store: StateStore) -> None:
    assert store.cursors.get(PROVIDER) is None
    cursor = {"page": 7, "high_water_mark": "2024-05-01T00:00:00Z", "last_full_reconcile_at": None}
    store.cursors.put(PROVIDER, cursor)
    store.cursors.put("other", {"page": 1})
    assert store.cursors.get(PROVIDER) == cursor
    store.client.delete_item(TableName=TABLE, Key={resources.TABLE_PARTITION_KEY: {"S": f"cursor#{PROVIDER}"}})
    assert store.cursors.get(PROVIDER) is None
    assert store.cursors.get("other") == {"page": 1}
    assert store.media.count_by_status()[MediaStatus.PENDING] == 0
