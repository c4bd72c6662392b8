"""scripts/prices.json's retrieval figures say where they come from and which ones are not confirmed (issue 14)."""

from __future__ import annotations

import json
from datetime import date

from scripts import _estimate_cost as estimate_cost


def test_every_region_s_retrieval_figures_name_their_check_and_what_is_unconfirmed() -> None:
    regions = json.loads(estimate_cost.PRICES_FILE.read_text())["regions"]
    for region, services in regions.items():
        retrieval = services["s3_retrieval"]
        date.fromisoformat(retrieval["checked"])
        prices = {k for k, v in retrieval.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        assert set(retrieval["unconfirmed"]) <= prices, region
        assert retrieval["source"], region
        if region != "us-east-1":
            # Only the us-east-1 list figures were found: anywhere else they are copies, and say so.
            assert "Not confirmed for this region" in retrieval["source"], region
            free = {"glacier_bulk_per_gb", "glacier_bulk_per_1000"}  # documented free in every region
            assert set(retrieval["unconfirmed"]) == prices - free, region
    assert regions["us-east-1"]["s3_retrieval"]["unconfirmed"] == ["transfer_out_per_gb"]
