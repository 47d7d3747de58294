import numpy as np
import pandas as pd
import pytest

from rca.errors import RCAInputError
from rca.window import align, check_window, split_at_onset, to_datetime_index, to_timestamp


def test_to_timestamp_reads_seconds_millis_and_iso():
    expected = pd.Timestamp("2026-01-01T00:00:00Z")
    assert to_timestamp(1767225600) == expected
    assert to_timestamp("1767225600") == expected
    assert to_timestamp(1767225600000) == expected
    assert to_timestamp("2026-01-01T01:00:00+01:00") == expected
    assert to_timestamp(pd.Timestamp("2026-01-01")) == expected


@pytest.mark.parametrize("bad", ["yesterday-ish", None, float("nan"), "1e400"])
def test_to_timestamp_rejects_garbage(bad):
    with pytest.raises(RCAInputError):
        to_timestamp(bad)


def test_align_puts_jittered_samples_on_one_grid_and_marks_gaps():
    # Two scrapers at :19.6 and :20.1 past each minute, one missing minute, one duplicate.
    base = pd.Timestamp("2026-01-01T00:00:00Z")
    a = [base + pd.Timedelta(seconds=60 * i + 19.6) for i in (0, 1, 3)]
    b = [base + pd.Timedelta(seconds=60 * i + 20.1) for i in (0, 1, 1, 3)]
    frame = pd.concat(
        [
            pd.DataFrame({"s:a": [1.0, 2.0, 4.0]}, index=pd.DatetimeIndex(a)),
            pd.DataFrame({"s:b": [10.0, 20.0, 22.0, np.inf]}, index=pd.DatetimeIndex(b)),
        ]
    )
    window = align(frame, 60)
    assert len(window) == 4  # minutes 0..3, minute 2 is a gap
    assert window["s:a"].tolist()[:2] == [1.0, 2.0]
    assert np.isnan(window["s:a"].iloc[2]) and window["s:a"].iloc[3] == 4.0
    assert window["s:b"].iloc[1] == 21.0  # duplicates averaged
    assert np.isnan(window["s:b"].iloc[3])  # inf is missing, not a value
    assert (np.diff(window.index.asi8) == 60 * 10**9).all()
    check_window(window)


def test_align_infers_the_step():
    index = to_datetime_index([0, 5, 10, 20])
    window = align(pd.DataFrame({"s:m": [1, 2, 3, 4]}, index=index))
    assert len(window) == 5 and window["s:m"].isna().sum() == 1


def test_split_at_onset_and_errors():
    index = pd.date_range("2026-01-01", periods=10, freq="1s", tz="UTC")
    window = pd.DataFrame({"s:m": range(10)}, index=index, dtype=float)
    before, after = split_at_onset(window, index[4])
    assert len(before) == 4 and len(after) == 6
    for outside in (index[0], index[-1] + pd.Timedelta(seconds=1), "2020-01-01"):
        with pytest.raises(RCAInputError, match="outside the window"):
            split_at_onset(window, outside)


def test_check_window_rejects_broken_windows():
    index = pd.date_range("2026-01-01", periods=3, freq="1s", tz="UTC")
    with pytest.raises(RCAInputError):
        check_window(pd.DataFrame({"s:m": [1.0, 2, 3]}, index=index.tz_localize(None)))
    with pytest.raises(RCAInputError):
        check_window(pd.DataFrame(index=index))
    with pytest.raises(RCAInputError):
        check_window(pd.DataFrame({"s:m": [1.0, 2, 3]}, index=index[::-1]))
