"""Pipeline state in one DynamoDB table: media records, runs (with the latest-run pointer and report claims) and
the lister's cursors. The one import path for callers: `from pipeline.state import StateStore, MediaStatus, ...`.

Layout: `store` (the `StateStore` aggregate: `store.media`, `store.runs`, `store.cursors`), `media` / `runs` /
`cursors` (one small class per record kind), `conditions` (the named sub-conditions of every conditional write),
`expressions` (conditions and updates that render for DynamoDB and evaluate in Python), `dynamo` (the DynamoDB
backend), `memory` (the in-memory backend for unit tests), `items` (item <-> record), `models`, `schema`.
"""

from pipeline.state.dynamo import BATCH_GET_MAX_KEYS, DynamoTable
from pipeline.state.items import (
    LISTER_PROJECTION,
    MAX_ERROR_CHARS,
    record_from_item,
    run_from_item,
    truncate_error,
)
from pipeline.state.media import MAX_CHECKPOINT_BYTES
from pipeline.state.memory import MemoryTable
from pipeline.state.models import (
    NOTE_NOT_FOUND,
    NOTE_SOURCE_DELETED,
    RUN_COUNTERS,
    Attr,
    Checksum,
    ClaimOutcome,
    ClaimResult,
    MediaRecord,
    MediaStatus,
    RunRecord,
    StateStoreError,
    TransitionRefusal,
    TransitionResult,
    UnprocessedKeysError,
)
from pipeline.state.schema import ensure_table, table_definition
from pipeline.state.store import StateStore

__all__ = [
    "BATCH_GET_MAX_KEYS",
    "LISTER_PROJECTION",
    "MAX_CHECKPOINT_BYTES",
    "MAX_ERROR_CHARS",
    "NOTE_NOT_FOUND",
    "NOTE_SOURCE_DELETED",
    "RUN_COUNTERS",
    "Attr",
    "Checksum",
    "ClaimOutcome",
    "ClaimResult",
    "DynamoTable",
    "MediaRecord",
    "MediaStatus",
    "MemoryTable",
    "RunRecord",
    "StateStore",
    "StateStoreError",
    "TransitionRefusal",
    "TransitionResult",
    "UnprocessedKeysError",
    "ensure_table",
    "record_from_item",
    "run_from_item",
    "table_definition",
    "truncate_error",
]
