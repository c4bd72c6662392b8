"""Media and run state in DynamoDB: records, typed outcomes of conditional writes, and the table's definition."""

from pipeline.state.models import (
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
from pipeline.state.store import (
    BATCH_GET_MAX_KEYS,
    LISTER_PROJECTION,
    MAX_CHECKPOINT_BYTES,
    MAX_ERROR_CHARS,
    StateStore,
    iso_utc,
    parse_iso_utc,
    truncate_error,
)

__all__ = [
    "BATCH_GET_MAX_KEYS",
    "LISTER_PROJECTION",
    "MAX_CHECKPOINT_BYTES",
    "MAX_ERROR_CHARS",
    "NOTE_SOURCE_DELETED",
    "RUN_COUNTERS",
    "Attr",
    "Checksum",
    "ClaimOutcome",
    "ClaimResult",
    "MediaRecord",
    "MediaStatus",
    "RunRecord",
    "StateStore",
    "StateStoreError",
    "TransitionRefusal",
    "TransitionResult",
    "UnprocessedKeysError",
    "ensure_table",
    "iso_utc",
    "parse_iso_utc",
    "table_definition",
    "truncate_error",
]
