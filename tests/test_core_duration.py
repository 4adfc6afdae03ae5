"""`mlsys.core.as_duration`, the one duration reader, and the modules that read durations through it."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError, as_duration


@pytest.mark.parametrize("value, expected", [
    ("30min", pd.Timedelta(minutes=30)), (" 1h ", pd.Timedelta(hours=1)), ("7D", pd.Timedelta(days=7)),
    (pd.Timedelta(seconds=90), pd.Timedelta(seconds=90)), (dt.timedelta(hours=2), pd.Timedelta(hours=2)),
    (np.timedelta64(5, "s"), pd.Timedelta(seconds=5)),
])
def test_reads_durations_with_a_unit(value, expected):
    assert as_duration(value, "window") == expected


@pytest.mark.parametrize("value, needle", [
    (5, "is a bare number"), (2.5, "is a bare number"), (np.int64(60), "is a bare number"), (np.float32(1), "is a bare number"),
    (float("nan"), "is not a duration"), (float("inf"), "is not a duration"), (True, "is not a duration"),
    (None, "is not a duration"), ("soon", "is not a duration"), ("", "is not a duration"), ("NaT", "is not a duration"),
    (pd.NaT, "is not a duration"), ([1], "is not a duration (list)"), ("-1h", "must be a positive duration"),
    ("0s", "must be a positive duration"), ("1 час", "is not a duration"),
])
def test_refuses_and_names_the_parameter(value, needle):
    with pytest.raises(ConfigError, match="^window=") as e:
        as_duration(value, "window")
    assert needle in str(e.value)


def test_zero_fractions_and_error_class():
    assert as_duration("0s", "lateness", allow_zero=True) == pd.Timedelta(0)
    with pytest.raises(ConfigError, match="must be a non-negative duration"):
        as_duration("-1s", "lateness", allow_zero=True)
    with pytest.raises(ConfigError, match="whole number of seconds"):
        as_duration("1500ms", "slide", whole_seconds=True)
    with pytest.raises(DataError, match="window=5 is a bare number"):
        as_duration(5, "window", error=DataError)


def test_bare_numbers_are_no_longer_nanosecond_windows():
    "Before as_duration these read 5 as 5 ns: a window or a label delay that holds nothing, without an error."
    from mlsys.monitor.metrics import labels_after, window_width
    from mlsys.monitor.observe import request_metrics

    with pytest.raises(DataError, match="window=5 is a bare number"):
        window_width(5)
    with pytest.raises(DataError, match="zero or negative length"):
        window_width("0h")
    with pytest.raises(DataError, match="zero or negative length"):
        window_width("-1h")
    preds = pd.DataFrame({"prediction_id": ["a", "b"], "timestamp": pd.to_datetime(["2013-01-01", "2013-01-02"], utc=True)})
    with pytest.raises(DataError, match="delay=15 is a bare number"):
        labels_after(preds, [1, 0], 15)
    assert labels_after(preds, [1, 0], "15min")["label_time"].iloc[0] == pd.Timestamp("2013-01-01 00:15", tz="UTC")
    with pytest.raises(ConfigError, match="window=60 is a bare number"):
        request_metrics(pd.DataFrame(), window=60)


@pytest.mark.parametrize("value, expected", [("7d", "7D"), ("1H", "1h"), ("1d12h", "1D12h"), ("2 days", "2 days"), (" 3 d ", "3D")])
def test_lower_case_days_and_upper_case_hours_read_without_a_pandas_warning(value, expected, recwarn):
    assert as_duration(value, "period") == pd.Timedelta(expected)
    assert not [w for w in recwarn if "deprecated" in str(w.message)]
