"""mlsys.monitor.dashboard: a self-contained page, checked in headless Chromium; hostile cells escaped; bad input."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlsys.core import ConfigError, DataError
from mlsys.monitor.dashboard import CHROMIUM, check_page, html_table, render_dashboard, write_dashboard

HOSTILE = '<script>console.error("xss")</script><img src="http://example.com/x.png">'


def frames(rng, n=12):
    w = pd.date_range("2013-07-01", periods=n, freq="6h", tz="UTC")
    ops = pd.DataFrame({"requests": rng.integers(0, 100, n), "error_rate": rng.random(n) / 10,
                        "latency_p50_ms": rng.uniform(5, 20, n), "latency_p99_ms": rng.uniform(20, 90, n),
                        "burn_rate": rng.uniform(0, 30, n), "budget_remaining": np.linspace(1, -0.5, n)}, index=w)
    ops.iloc[3, 1:] = np.nan  # a window with no requests
    acc = pd.DataFrame({"window": w, "accuracy": rng.uniform(0.6, 0.9, n), "coverage": rng.uniform(0, 1, n)})
    drift = pd.DataFrame([{"window": t, "feature": f, "statistic": rng.random(), "p_value": rng.random(),
                           "drift": bool(rng.random() < 0.3)} for t in w for f in ["temp", "distance", "naïve ü"]])
    val = pd.DataFrame([{"window": t, "check": c, "column": HOSTILE if c == "format" else "x", "failing": 1,
                         "passed": bool(rng.random() < 0.8)} for t in w for c in ["range", "format"]])
    alerts = pd.DataFrame({"window": w[:2], "alert": ["fast burn", HOSTILE], "severity": "page"})
    return dict(operational=ops, accuracy=acc, drift=drift, validation=val, alerts=alerts)


def need_browser():
    pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package chromium)")


def test_page_loads_offline_without_errors_and_is_not_blank(tmp_path):
    need_browser()
    page = write_dashboard(tmp_path / "d.html", **frames(np.random.default_rng(0)), title="t & <b>")
    text = page.read_text()
    assert "<script" not in text and "https://" not in text
    assert text.count("http://") == text.count("&quot;http://")  # only inside escaped cell text
    assert "&lt;script&gt;" in text and "t &amp; &lt;b&gt;" in text
    seen = check_page(page, tmp_path / "d.png")
    assert seen["errors"] == [] and seen["blocked"] == []
    assert seen["images"] == 4 and seen["broken_images"] == 0
    assert not seen["blank"] and (tmp_path / "d.png").read_bytes() == seen["png"]
    assert seen["height"] > 900


def test_checker_catches_what_it_must(tmp_path):
    "Negative controls: an external request, a console error and a blank page are all reported."
    need_browser()
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><h1>x</h1><img src="http://127.0.0.2:9/x.png">'
                   '<script>console.error("boom")</script></body></html>')
    seen = check_page(bad)
    assert seen["blocked"] == ["http://127.0.0.2:9/x.png"]
    assert any("boom" in e for e in seen["errors"])
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    assert check_page(blank)["blank"]


def test_sections_are_optional_and_tables_truncate():
    rng = np.random.default_rng(1)
    f = frames(rng, 30)
    page = render_dashboard(operational=f["operational"], max_rows=5)
    assert page.count("Not computed for this run") == 4
    assert "25 more row(s) not shown" in page
    assert render_dashboard().count("Not computed") == 5
    empty = render_dashboard(alerts=f["alerts"].head(0))
    assert "No alert fired" in empty


def test_html_table_escapes_every_cell():
    rng = np.random.default_rng(2)
    alphabet = list("<>&\"'é\n ab") + ["</td>", "<script>"]
    for _ in range(200):
        vals = ["".join(rng.choice(alphabet, int(rng.integers(0, 6)))) for _ in range(3)]
        out = html_table(pd.DataFrame({"a<": vals}))
        assert "<script>" not in out and "</td></td>" not in out
        assert out.count("<td>") == 3 and out.count("</td>") == 3


def test_bad_input_is_named(tmp_path):
    f = frames(np.random.default_rng(3))
    with pytest.raises(DataError, match="operational needs its windows"):
        render_dashboard(operational=f["operational"].reset_index(drop=True))
    with pytest.raises(DataError, match="drift lacks column"):
        render_dashboard(drift=f["drift"].drop(columns="statistic"))
    with pytest.raises(DataError, match="accuracy lacks column"):
        render_dashboard(accuracy=f["accuracy"].drop(columns="coverage"))
    with pytest.raises(DataError, match="validation must be a pandas DataFrame"):
        render_dashboard(validation=[1, 2])
    with pytest.raises(DataError, match="must hold timestamps"):
        render_dashboard(alerts=pd.DataFrame({"window": ["monday"]}))
    with pytest.raises(DataError, match="none of latency"):
        render_dashboard(operational=pd.DataFrame({"x": [1]}, index=pd.date_range("2020", periods=1, tz="UTC")))
    with pytest.raises(ConfigError, match="unknown dashboard argument"):
        write_dashboard(tmp_path / "x.html", latency=f["operational"])
    with pytest.raises(ConfigError, match="max_rows"):
        render_dashboard(max_rows=0)
    with pytest.raises(DataError, match="no page"):
        check_page(tmp_path / "missing.html")
    with pytest.raises(ConfigError, match="no Chromium"):
        (tmp_path / "p.html").write_text("<html></html>")
        check_page(tmp_path / "p.html", executable=str(tmp_path / "no-chromium"))


def test_detections_and_extra_tables_are_sections_of_their_own():
    f = frames(np.random.default_rng(4))
    t = pd.Timestamp("2013-07-01", tz="UTC") + pd.to_timedelta([5, 1, 3], unit="h")
    det = pd.DataFrame({"time": t, "detector": ["ddm", HOSTILE, "ddm"], "watched": "errors"})
    page = render_dashboard(**f, detections=det, tables={"Client <vs> server": pd.DataFrame({"x": [HOSTILE]})})
    assert "Online detectors" in page and "Client &lt;vs&gt; server" in page and "<script" not in page
    assert page.count('<img class="chart"') == 5 and "online detections" in page  # its raster and its card
    assert render_dashboard(**f).count("Online detectors") == 0  # left out, not shown as missing, when not given
    assert "No stream detector fired" in render_dashboard(detections=det.head(0))
    with pytest.raises(DataError, match="detections lacks column"):
        render_dashboard(detections=det.drop(columns="detector"))
    with pytest.raises(DataError, match="tz-aware"):
        render_dashboard(detections=det.assign(time=t.tz_localize(None)))
    with pytest.raises(DataError, match="tables must map"):
        render_dashboard(tables={"x": [1]})
