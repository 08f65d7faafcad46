"""A bounded soak: two dozen devices poll a faulty HTTP bucket while versions are released."""

from __future__ import annotations

import pytest

from tests.helpers.soak import FAULTS, soak


@pytest.mark.slow
def test_devices_survive_a_faulty_bucket_and_end_on_the_newest_signed_build(tmp_path,
                                                                            tiny_models):
    summary = soak(tmp_path, tiny_models, devices=24, seconds=40, fault_rate=0.3)
    print(summary)  # the counts, for whoever reads the log
    assert all(summary["faults"].get(f, 0) > 0 for f in FAULTS), summary["faults"]
    assert summary["ran_unverified"] == 0
    assert summary["versions_published"] >= 5
    assert summary["polls"]["updated"] > 0 and summary["refusals"]
    # When the faults stop, every device reaches the newest build, verified.
    assert summary["final_versions"] == {summary["latest"]: 24}
    assert summary["final_verified"] == 24
    # Memory stays bounded while polls go on (the device process, all 24 agents).
    assert summary["rss_mib_second_half_max"] <= summary["rss_mib_first_half_max"] + 16
