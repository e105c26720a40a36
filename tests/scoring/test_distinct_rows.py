"""The distinct rows of reason codes, found on packed integers, are ``np.unique``'s by rows."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from recoup.scoring.service import distinct_rows

CODES = st.integers(min_value=-1, max_value=32_766)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=4).flatmap(
        lambda columns: hnp.arrays(
            np.int16,
            st.tuples(st.integers(min_value=1, max_value=60), st.just(columns)),
            elements=st.one_of(CODES, st.sampled_from([-1, 0, 32_766])),
        )
    )
)
def test_the_same_rows_in_the_same_order_as_comparing_rows(codes: np.ndarray) -> None:
    rows, inverse = distinct_rows(codes)
    expected_rows, expected_inverse = np.unique(codes, axis=0, return_inverse=True)
    assert rows.dtype == np.int16
    assert np.array_equal(rows, expected_rows)
    assert np.array_equal(inverse, expected_inverse.reshape(-1))
    assert np.array_equal(rows[inverse], codes)


def test_no_rows() -> None:
    rows, inverse = distinct_rows(np.zeros((0, 3), dtype=np.int16))
    assert rows.tolist() == []
    assert inverse.tolist() == []
