"""scripts/catalog.py against the moto server: the JSON, CSV and HTML exports, selectors, and the bucket upload."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import requests

from scripts import _catalog as catalog
from tests.scripts.archive_seed import ARCHIVE, BUCKET, seed_archive


@pytest.fixture
def archive(stack):
    stack.provision(queues=False)
    keys = seed_archive(stack.client("s3"), stack.state)
    return stack, keys


def test_json_lists_every_archived_medium_with_its_objects_and_storage_class(archive, run_script) -> None:
    stack, keys = archive
    result = run_script(catalog, stack.args("--json"))
    assert result.code == 0, result.err
    entries = {e["media_id"]: e for e in result.json()}
    assert set(entries) == {m.media_id for m in ARCHIVE}
    for medium in ARCHIVE:
        entry = entries[medium.media_id]
        assert entry["type"] == medium.media_type
        assert entry["captured_at"] == medium.captured_at
        assert entry["camera"] == medium.camera
        assert entry["storage_class"] == medium.storage_class
        assert [o["key"] for o in entry["objects"]] == keys[medium.media_id]
        assert [o["size"] for o in entry["objects"]] == list(medium.sizes)
        assert [o["filename"] for o in entry["objects"]] == list(medium.chapters)
        assert entry["size"] == sum(medium.sizes)
        assert entry["has_sidecar"] is True
    assert entries["aa02"]["state"] == "archived"  # Deep Archive, never restored
    assert entries["aa01"]["state"] == "instant"
    assert entries["aa03"]["state"] == "instant"  # Glacier IR reads at once


def test_a_restore_in_progress_and_a_finished_one_show_in_the_catalog(archive, run_script) -> None:
    stack, keys = archive
    s3 = stack.client("s3")
    s3.restore_object(Bucket=BUCKET, Key=keys["aa04"][0], RestoreRequest={"Days": 3})
    entries = {e["media_id"]: e for e in run_script(catalog, stack.args("--json")).json()}
    assert entries["aa04"]["state"] == "restored"  # moto completes a restore at once
    assert entries["aa04"]["objects"][0]["restored_until"]
    assert entries["aa02"]["state"] == "archived"


def test_selectors_narrow_the_catalog(archive, run_script) -> None:
    stack, _ = archive

    def ids(*selectors: str) -> list[str]:
        result = run_script(catalog, stack.args("--json", *selectors))
        assert result.code == 0, result.err
        return sorted(e["media_id"] for e in result.json())

    assert ids("--camera", "hero9 black") == ["aa02", "aa03"]
    assert ids("--type", "photo") == ["aa03"]
    assert ids("--since", "2025-07-01") == ["aa02", "aa04"]
    assert ids("--since", "2025-07-01", "--until", "2025-07-16") == ["aa02"]
    assert ids("--name", "gx02*.mp4") == ["aa02"]  # any chapter's name matches
    assert ids("--media-id", "aa01", "--media-id", "aa04") == ["aa01", "aa04"]


def test_csv_and_html_are_written(archive, run_script, tmp_path: Path) -> None:
    stack, _ = archive
    csv_path, html_path = tmp_path / "catalog.csv", tmp_path / "catalog.html"
    result = run_script(catalog, stack.args("--csv", str(csv_path), "--html", str(html_path)))
    assert result.code == 0, result.err
    rows = list(csv.DictReader(csv_path.open(encoding="utf-8")))
    assert sorted(r["media_id"] for r in rows) == ["aa01", "aa02", "aa03", "aa04"]
    chaptered = next(r for r in rows if r["media_id"] == "aa02")
    assert chaptered["chapters"] == "GX010002.MP4 | GX020002.MP4"
    assert chaptered["objects"] == "2"
    assert chaptered["size"] == "650000"
    page = html_path.read_text(encoding="utf-8")
    assert "<script src" not in page  # self-contained: nothing fetched
    assert "http://" not in page
    assert "https://" not in page
    data = page.split('id="catalog-data">', 1)[1].split("</script>", 1)[0]
    assert sorted(e["media_id"] for e in json.loads(data)) == ["aa01", "aa02", "aa03", "aa04"]


def test_a_title_cannot_break_out_of_the_page(stack, run_script, tmp_path: Path) -> None:
    from scripts._catalog_page import render_page

    page = render_page(
        [{"media_id": "x", "title": "</script><img src=x onerror=alert(1)>"}], title="t", generated_at="g"
    )
    data = page.split('id="catalog-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data)[0]["title"] == "</script><img src=x onerror=alert(1)>"
    assert "<img" not in page


def test_upload_puts_the_page_in_the_bucket_and_prints_a_working_link(archive, run_script) -> None:
    stack, _ = archive
    result = run_script(catalog, stack.args("--upload", "--link-hours", "2"))
    assert result.code == 0, result.err
    shown = json.loads(result.out)
    assert shown["key"].startswith("catalog/")
    assert shown["valid_hours"] == 2
    response = requests.get(shown["link"], timeout=10)
    assert response.status_code == 200
    assert 'id="catalog-data"' in response.text


def test_nothing_asked_for_is_a_usage_error(archive, run_script) -> None:
    stack, _ = archive
    result = run_script(catalog, stack.args())
    assert result.code == 2
    assert "--json" in result.err
