"""Shared pieces of the bad-input tests (tests/test_*_badinput.py): the generic junk values, the per-parameter call
builder and the sweep that collects raw library errors, and the check that a case raises a named mlsys error."""
import warnings

import numpy as np
import pandas as pd
import pytest

from mlsys.core import MlsysError


class Junk:
    pass


JUNK = [None, "x", True, 1.5, -1, 0, float("nan"), float("inf"), [], {}, Junk(), np.array([]), np.ones((1, 1, 1)), pd.DataFrame()]


def each(fn, **base) -> dict:
    "{'fn.param': call(value)} for every parameter of `base`: `fn` called with `base`, that one parameter replaced."
    return {f"{getattr(fn, '__name__', fn)}.{k}": (lambda v, k=k: fn(**(base | {k: v}))) for k in base}


def raw_errors(calls: dict, values=JUNK, after=None) -> list:
    "Feed every value to every call; return (call, value, error type, message) for each non-mlsys error (warnings muted)."
    raw = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, call in calls.items():
            for v in values:
                try:
                    call(v)
                except MlsysError:
                    pass
                except Exception as e:  # noqa: BLE001 - collected and reported
                    raw.append((name, repr(v)[:30], type(e).__name__, str(e)[:80]))
                finally:
                    if after is not None:
                        after()
    return raw


def check_named(fn, error, fragment) -> None:
    "`fn()` raises `error`, an mlsys error whose message contains `fragment` (warnings muted)."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error) as info:
            fn()
    assert isinstance(info.value, MlsysError)
    assert fragment in str(info.value), str(info.value)
