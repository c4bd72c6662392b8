"""scripts/restore.py against the moto server: selection, dry-run figures checked by hand, idempotent requests
recorded in the state table, status, and fetch (at once for readable classes, resumable, CRC32C-checked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from pipeline.services.restore_ledger import RestoreLedger
from scripts import _restore as restore
from scripts._archive import ArchivedFile, Medium
from scripts._restore_fetch import ChecksumMismatch, RangedFetch
from tests.scripts.archive_seed import BUCKET, body_of, seed_archive

KIB = 1024


@pytest.fixture
def archive(stack):
    stack.provision(queues=False)
    keys = seed_archive(stack.client("s3"), stack.state)
    return stack, keys


def test_the_dry_run_prints_objects_bytes_wait_and_cost_and_restores_nothing(archive, run_script) -> None:
    stack, keys = archive
    result = run_script(restore, stack.args("--since", "2025-07-01"))
    assert result.code == 0, result.err
    plan = result.json()
    assert plan["dry_run"] is True
    assert plan["media"] == ["aa02", "aa04"]
    assert sorted(o["key"] for o in plan["objects"]) == sorted([*keys["aa02"], *keys["aa04"]])  # both chapters
    assert plan["bytes"] == 400_000 + 250_000 + 150_000
    assert plan["expected_wait"] == ["within 12 hours"]
    # By hand, eu-west-1: 0.0008 GB x 0.02 USD/GB + 3 requests x 0.10 USD/1000 = 0.000316 USD to retrieve;
    # 0.0008 GB x 0.023 USD/GB-month x 7/30 months = 0.0000043 USD for the restored copies.
    cost = plan["cost"]
    assert cost["lines"]["DEEP_ARCHIVE Standard retrieval"] == pytest.approx(0.000316)
    assert cost["lines"]["restored copies in Standard for 7 days"] == pytest.approx(0.000004)
    assert cost["total_usd"] == pytest.approx(0.00032, abs=1e-6)
    bulk = run_script(restore, stack.args("--since", "2025-07-01", "--tier", "Bulk")).json()
    # 0.0008 x 0.0025 + 3 x 0.025 / 1000 = 0.000077
    assert bulk["cost"]["lines"]["DEEP_ARCHIVE Bulk retrieval"] == pytest.approx(0.000077)
    assert bulk["expected_wait"] == ["within 48 hours"]
    head = stack.client("s3").head_object(Bucket=BUCKET, Key=keys["aa02"][0])
    assert "Restore" not in head  # a dry run asks S3 nothing


def test_instantly_readable_media_need_no_restore(archive, run_script) -> None:
    stack, _ = archive
    plan = run_script(restore, stack.args("--media-id", "aa01", "--media-id", "aa03")).json()
    assert plan["objects"] == []
    assert plan["bytes"] == 0
    assert len(plan["readable_now"]) == 2


def test_expedited_is_refused_where_the_class_does_not_offer_it(archive, run_script) -> None:
    stack, _ = archive
    result = run_script(restore, stack.args("--media-id", "aa02", "--tier", "Expedited"))
    assert result.code == 2
    assert "Expedited tier is not offered for DEEP_ARCHIVE" in result.err


def test_no_selector_is_a_usage_error(archive, run_script) -> None:
    stack, _ = archive
    result = run_script(restore, stack.args("--yes"))
    assert result.code == 2
    assert "say which media" in result.err


def test_yes_restores_records_the_request_and_asking_twice_is_harmless(archive, run_script) -> None:
    stack, keys = archive
    first = run_script(restore, stack.args("--media-id", "aa02", "--yes", "--days", "3"))
    assert first.code == 0, first.err
    issued = first.json()["issued"]
    assert sorted(issued["requested"]) == sorted(keys["aa02"])
    ledger = RestoreLedger(stack.client("dynamodb"), stack.names.table)
    request = ledger.get(issued["request_id"])
    assert request is not None
    assert request.tier == "Standard"
    assert request.days == 3
    assert sorted(o.key for o in request.objects) == sorted(keys["aa02"])
    assert [o.filename for o in request.objects] == ["GX010002.MP4", "GX020002.MP4"]
    for key in keys["aa02"]:
        assert ledger.request_of(key) == issued["request_id"]
        assert "Restore" in stack.client("s3").head_object(Bucket=BUCKET, Key=key)
    second = run_script(restore, stack.args("--media-id", "aa02", "--yes"))
    assert second.code == 0, second.err
    assert second.json()["objects"] == []  # restored already: nothing asked again
    assert "issued" not in second.json()

    status = run_script(restore, stack.args("status", "--media-id", "aa02", "--media-id", "aa04")).json()
    by_id = {m["media_id"]: m for m in status}
    assert by_id["aa02"]["state"] == "restored"
    assert all(o["ready_until"] for o in by_id["aa02"]["objects"])
    assert by_id["aa04"]["state"] == "archived"


class _Context:
    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def client(self, service: str) -> Any:
        return self._s3


class _Thawing:
    """S3 answering RestoreAlreadyInProgress, as it does while an earlier request thaws the object."""

    def restore_object(self, **_kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "RestoreAlreadyInProgress", "Message": "busy"}}, "RestoreObject")


def _cold(key: str, restore_header: str | None = None) -> Medium:
    f = ArchivedFile(key=key, size=10, storage_class="DEEP_ARCHIVE", filename="a.mp4", restore=restore_header)
    return Medium("gopro", "m1", "video", None, None, None, "a.mp4", (f,))


def test_an_object_already_thawing_is_not_an_error_and_not_asked_again() -> None:
    thawing = _cold("k1", 'ongoing-request="true"')
    plan = restore.make_plan([thawing, _cold("k2")], "Standard", 7)
    assert [f.key for _, f in plan.thawing] == ["k1"]
    assert [f.key for _, f in plan.to_restore] == ["k2"]
    issued = restore.issue(_Context(_Thawing()), "b", plan, ledger=None)  # type: ignore[arg-type]
    assert issued["requested"] == []
    assert issued["already_thawing"] == ["k1", "k2"]
    assert issued["request_id"] is None


def test_fetch_downloads_readable_media_under_their_original_names_at_once(archive, run_script, tmp_path) -> None:
    stack, _ = archive
    args = ("fetch", "--media-id", "aa01", "--media-id", "aa03", "--to", str(tmp_path), "--part-bytes", "65536")
    result = run_script(restore, stack.args(*args))
    assert result.code == 0, result.err
    assert (tmp_path / "aa01" / "GX010001.MP4").read_bytes() == body_of("aa01", 0, 300_000)
    assert (tmp_path / "aa03" / "GOPR0003.JPG").read_bytes() == body_of("aa03", 0, 200_000)
    again = run_script(restore, stack.args(*args)).json()
    assert {f["outcome"] for f in again["fetched"]} == {"present"}


def test_fetch_of_media_still_in_deep_archive_says_so(archive, run_script, tmp_path) -> None:
    stack, _ = archive
    result = run_script(restore, stack.args("fetch", "--media-id", "aa04", "--to", str(tmp_path)))
    assert result.code == 1
    assert result.json()["not_ready"][0]["state"] == "archived"
    assert not (tmp_path / "aa04").exists()


def test_fetch_links_name_the_original_file(archive, run_script) -> None:
    stack, _ = archive
    result = run_script(restore, stack.args("fetch", "--media-id", "aa01", "--links"))
    assert result.code == 0, result.err
    link = result.json()["links"][0]
    assert link["filename"] == "GX010001.MP4"
    assert "GX010001.MP4" in link["link"]


class _CutAfter:
    """The S3 client, but the connection is cut after `parts` ranged reads."""

    def __init__(self, s3: Any, parts: int | None) -> None:
        self._s3, self._left, self.calls = s3, parts, 0

    def get_object(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self._left is not None:
            if self._left <= 0:
                raise ConnectionResetError("cut")
            self._left -= 1
        return self._s3.get_object(**kwargs)


def test_fetch_resumes_after_a_cut_and_reads_only_the_missing_ranges(archive, tmp_path: Path) -> None:
    stack, keys = archive
    s3 = stack.client("s3")
    key, data = keys["aa01"][0], body_of("aa01", 0, 300_000)
    from pipeline.transfer.checksums import Checksum, crc32c

    expected = Checksum.crc32c(crc32c(data)).value
    target = tmp_path / "GX010001.MP4"

    def job(client: Any) -> RangedFetch:
        return RangedFetch(
            client,
            BUCKET,
            key,
            size=len(data),
            expected_crc32c=expected,
            target=target,
            part_bytes=64 * KIB,
            workers=1,
        )

    cut = _CutAfter(s3, parts=2)
    with pytest.raises(ConnectionResetError):
        job(cut).run()
    assert not target.exists()
    assert job(cut).partial.exists()
    counting = _CutAfter(s3, parts=None)
    assert job(counting).run() == "resumed"
    assert counting.calls == 5 - 2  # 300,000 bytes in 64 KiB ranges: 5, two already in
    assert target.read_bytes() == data
    assert not job(counting).partial.exists()
    assert not job(counting).progress.exists()


def test_fetch_refuses_bytes_whose_crc32c_does_not_match(archive, run_script, tmp_path) -> None:
    stack, keys = archive
    s3 = stack.client("s3")
    key = keys["aa01"][0]
    tampered = b"\0" * 300_000  # same size, other bytes: only the checksum can tell
    s3.put_object(Bucket=BUCKET, Key=key, Body=tampered)
    result = run_script(restore, stack.args("fetch", "--media-id", "aa01", "--to", str(tmp_path)))
    assert result.code == 1
    assert "the bytes were refused" in result.json()["failed"][0]["error"]
    assert not (tmp_path / "aa01" / "GX010001.MP4").exists()
    assert not (tmp_path / "aa01" / "GX010001.MP4.part").exists()
    with pytest.raises(ChecksumMismatch):
        RangedFetch(s3, BUCKET, key, size=300_000, expected_crc32c="AAAAAA==", target=tmp_path / "x").run()
