"""Small HTTP helpers shared by the simulator tests: they speak to it exactly as a client would."""

from __future__ import annotations

from typing import Any

import requests

from devtools.gopro_simulator import ACCEPT_HEADER, GoProSimulator

TIMEOUT = 10


def token_request(sim: GoProSimulator, **form: str) -> requests.Response:
    creds = sim.credentials
    body = {"client_id": creds.client_id, "client_secret": creds.client_secret, **form}
    body = {name: value for name, value in body.items() if value is not None}
    return requests.post(f"{sim.base_url}/v1/oauth2/token", data=body, timeout=TIMEOUT)


def api_headers(sim: GoProSimulator, token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or sim.credentials.access_token}", "Accept": ACCEPT_HEADER}


def search(sim: GoProSimulator, token: str | None = None, **params: Any) -> requests.Response:
    return requests.get(
        f"{sim.base_url}/media/search", headers=api_headers(sim, token), params=params, timeout=TIMEOUT
    )


def all_pages(sim: GoProSimulator, per_page: int = 3, **params: Any) -> list[dict[str, Any]]:
    """Every medium over every page, in order, duplicates kept (callers check dedupe themselves)."""
    media: list[dict[str, Any]] = []
    page = 1
    while True:
        answer = search(sim, per_page=per_page, page=page, **params)
        answer.raise_for_status()
        body = answer.json()
        media.extend(body["_embedded"]["media"])
        if page >= body["_pages"]["total_pages"] or not body["_embedded"]["media"]:
            return media
        page += 1


def descriptor(sim: GoProSimulator, media_id: str) -> requests.Response:
    return requests.get(f"{sim.base_url}/media/{media_id}/download", headers=api_headers(sim), timeout=TIMEOUT)


def entries(body: dict[str, Any], section: str, label: str | None = None) -> list[dict[str, Any]]:
    found = body["_embedded"][section]
    return [entry for entry in found if label is None or entry.get("label") == label]


def source_url(sim: GoProSimulator, media_id: str, item: int = 1, method: str = "url") -> str:
    """The link of a video/photo's `source` variation for `item` (by `item_number` when chaptered)."""
    body = descriptor(sim, media_id).json()
    sources = entries(body, "variations", "source")
    for entry in sources:
        if entry.get("item_number", 1) == item:
            return str(entry[method])
    raise AssertionError(f"no source variation {item} for {media_id}")
