"""Naming and refresh rules of GoPro download plans (pipeline.providers.gopro.descriptor, medium_files)."""

from __future__ import annotations

import pytest

from pipeline.providers.base import DownloadPlan, DownloadSource, MediaType
from pipeline.providers.errors import IncompleteMedium
from pipeline.providers.gopro.descriptor import base_filename, plan_download
from pipeline.services.medium_files import same_file


@pytest.mark.parametrize(
    ("descriptor", "listed", "ext", "media_type", "edit", "expected"),
    [
        ("GX010042.MP4", "other.mp4", "mp4", MediaType.VIDEO, False, "GX010042.MP4"),
        ("", "GX010042.MP4", "mp4", MediaType.VIDEO, False, "GX010042.MP4"),
        ("", "", "", MediaType.VIDEO, False, "62NzWRrpPXm7o.mp4"),  # neither name: the id, never bare
        ("", "GOPR0001", "", MediaType.PHOTO, False, "GOPR0001.jpg"),
        ("GX010042", "", "mp4", MediaType.VIDEO, False, "GX010042.mp4"),  # a descriptor name without one
        ("", "62NzWRrpPXm7o.json", "mp4", MediaType.VIDEO, True, "62NzWRrpPXm7o.mp4"),  # an edit: the rendition's
        ("My edit.mp4", "x.json", "mp4", MediaType.VIDEO, True, "My edit.mp4"),
    ],
)
def test_no_name_ever_loses_its_extension(descriptor, listed, ext, media_type, edit, expected) -> None:
    name = base_filename(descriptor, listed, "62NzWRrpPXm7o", rendition_ext=ext, media_type=media_type, edit=edit)
    assert name == expected


def link(label: str, item: int, url: str, **extra: object) -> dict[str, object]:
    return {"label": label, "item_number": item, "url": url, "head": url + "?h", "type": "mp4", **extra}


def test_a_chaptered_plan_must_offer_every_listed_item() -> None:
    payload = {"filename": "GX.MP4", "_embedded": {"variations": [link("source", 1, "https://c/1")]}}
    with pytest.raises(IncompleteMedium):
        plan_download(payload, media_id="abcdef123456", media_type=MediaType.VIDEO, item_count=2)
    gap = {
        "filename": "GX.MP4",
        "_embedded": {"variations": [link("source", 1, "https://c/1"), link("source", 3, "https://c/3")]},
    }
    with pytest.raises(IncompleteMedium):
        plan_download(gap, media_id="abcdef123456", media_type=MediaType.VIDEO)  # 1 and 3: chapter 2 missing


def test_a_fresh_plan_is_matched_by_label_and_item_not_position() -> None:
    def source(label: str, item: int, url: str) -> DownloadSource:
        return DownloadSource(url=url, filename=f"{label}{item}", content_type="x", item_number=item, label=label)

    fresh = DownloadPlan(
        "m", "f", (source("file", 1, "u1"), source("file", 3, "u3"), source("raw_photo", 1, "r1"))
    )
    assert same_file(fresh, source("file", 3, "old")).url == "u3"
    assert same_file(fresh, source("raw_photo", 1, "old")).url == "r1"
    with pytest.raises(IncompleteMedium):
        same_file(fresh, source("file", 2, "old"))


class _Pages:
    """Answers `get_json` with prepared search pages (ids per page), parsed as the provider parses them."""

    def __init__(self, pages: list[list[str]], total_pages: int) -> None:
        self.pages, self.total_pages = pages, total_pages

    def get_json(self, path: str, *, params: dict[str, str], what: str, parse):
        ids = self.pages[int(params["page"]) - 1]
        media = [{"id": i, "type": "Video", "filename": f"{i}.MP4", "ready_to_view": "ready"} for i in ids]
        return parse({"_pages": {"total_pages": self.total_pages}, "_embedded": {"errors": [], "media": media}})


def provider_over(pages: list[list[str]]):
    from pipeline.providers.gopro.provider import GoProProvider

    return GoProProvider(tokens=None, http=_Pages(pages, len(pages)), page_size=2)  # type: ignore[arg-type]


def test_a_deletion_is_confirmed_only_by_a_whole_walk_of_full_pages() -> None:
    full = [["aaaaaa1", "aaaaaa2"], ["aaaaaa3", "aaaaaa4"], ["aaaaaa5"]]
    assert provider_over(full).still_listed("aaaaaa4") is True
    assert provider_over(full).still_listed("bbbbbb9") is False
    # Page 2 came back short (GoPro serves such pages and they look complete): absence proves nothing.
    short = [["aaaaaa1", "aaaaaa2"], ["aaaaaa3"], ["aaaaaa5"]]
    assert provider_over(short).still_listed("bbbbbb9") is None
