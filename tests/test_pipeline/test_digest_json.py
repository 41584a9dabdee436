"""A snapshot's digests written as JSON text straight from their bytes (`sketches.to_json`) are the bytes orjson
writes for fastdigest's own dicts (`to_dict`): every snapshot sent, replayed or printed depends on it."""

from __future__ import annotations

import orjson
import pytest
from fastdigest import TDigest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.metrics import encoded_digest, snapshot
from pipeline.pane_store import ClosedPaneEvent
from pipeline.panes import ClosedPane
from pipeline.sketches import PANE_CENTROIDS, digest_of, merge_digests, to_dict, to_json
from tests.test_pipeline.test_held_panes import closed_panes

# Latencies as logs give them, and the numbers whose text differs most between writers: exponents, negative zero,
# subnormals, the largest doubles, integers past 2**53.
numbers = st.one_of(st.floats(0, 10_000, allow_nan=False), st.integers(0, 2_000).map(float),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from([0.0, -0.0, 5e-324, 1e-7, 1e16, 1e21, 1.7976931348623157e308, 2.0**53 + 2]))


@settings(max_examples=400, deadline=None)
@given(st.lists(numbers, min_size=1, max_size=1_200), st.lists(numbers, max_size=400))
def test_a_digest_s_json_text_is_the_one_orjson_writes_for_its_dict(values: list[float], more: list[float]) -> None:
    digest = digest_of(values)
    assert digest is not None
    merged = merge_digests([digest, digest_of(more)])  # merged centroids carry weights above 1
    for sketch in (digest, merged):
        assert sketch is not None
        assert to_json(sketch) == orjson.dumps(to_dict(sketch))


def test_an_empty_digest_is_written_as_its_dict_and_bytes_of_another_shape_are_refused_as_fastdigest_does() -> None:
    empty = TDigest.from_values([], max_centroids=PANE_CENTROIDS).to_bytes()
    assert to_json(empty) == orjson.dumps(to_dict(empty))
    assert orjson.loads(to_json(empty))["centroids"] == []
    other = TDigest.from_values([1.0, 2.0], max_centroids=PANE_CENTROIDS).to_bytes() + b"\0" * 16  # not its layout
    with pytest.raises(ValueError, match="corrupt"):  # decoded by fastdigest, not written from a guess
        to_json(other)


@settings(max_examples=150, deadline=None)
@given(closed_panes(), st.integers(0, 10**12))
def test_a_snapshot_sent_is_byte_for_byte_the_snapshot_dict(pane: ClosedPane, rows_today: int) -> None:
    event = ClosedPaneEvent("svc", "/api/x", 1_767_700_800_000, 1_767_700_860_000, pane, rows_today)
    assert orjson.dumps(snapshot(event, encoded_digest)) == orjson.dumps(snapshot(event))
