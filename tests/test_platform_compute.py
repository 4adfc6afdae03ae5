"""mlsys.platform.compute: the peak's arithmetic from cpuinfo texts, the matmul FLOP count against an instrumented
loop, utilization and its honest handling above 1, STREAM kernels' results, the disk test's clean-up (also when it
fails), the phase timer's sums and the flights job's load/compute split. No estimator is defined here; no timing
is asserted."""
import os
from pathlib import Path

import numpy as np
import pytest

from mlsys.core import ConfigError, DataError
from mlsys.platform import compute as C

INTEL = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Gold 6338
cpu MHz\t\t: 2000.000
flags\t\t: fpu sse sse2 avx fma avx2 avx512f avx512dq

processor\t: 1
model name\t: something else
flags\t\t: sse2
"""
HASWELL = "model name : Intel Core i7-4770\ncpu MHz : 3400.0\nflags : sse2 avx avx2 fma\n"
OLD = "model name : old\ncpu MHz : 1000.0\nflags : sse sse2\n"
ARM = "processor : 0\nFeatures : fp asimd evtstrm\n"


def _info(tmp_path, text, **kw):
    p = tmp_path / "cpuinfo"
    p.write_text(text)
    return C.cpu_info(p, **kw)


# --- the peak ---------------------------------------------------------------------------------------------------------

def test_parse_reads_the_first_block_only():
    f = C.parse_cpuinfo(INTEL)
    assert f["model name"] == "Intel(R) Xeon(R) Gold 6338" and "avx512f" in f["flags"]


@pytest.mark.parametrize("text,simd,bits,fp32,fp64", [
    (INTEL, "AVX-512", 512, 64, 32),  # 16 lanes x 2 (FMA) x 2 units
    (HASWELL, "AVX2", 256, 32, 16),
    (OLD, "SSE2", 128, 8, 4),  # no FMA: 4 lanes x 1 x 2 units
])
def test_flops_per_cycle_follow_the_simd_width(tmp_path, text, simd, bits, fp32, fp64):
    info = _info(tmp_path, text, cores=4)
    assert (info.simd, info.vector_bits) == (simd, bits)
    assert info.flops_per_cycle("float32") == fp32 and info.flops_per_cycle("float64") == fp64
    assert info.peak_flops("float32") == pytest.approx(4 * info.clock_ghz * 1e9 * fp32)
    assert info.peak_flops("float32", 1) == pytest.approx(info.peak_flops("float32") / 4)


def test_assumptions_are_parameters(tmp_path):
    base = _info(tmp_path, INTEL, cores=2)
    assert base.clock_ghz == pytest.approx(2.0) or base.clock_source == "cpufreq max"
    half = _info(tmp_path, INTEL, cores=2, datapath_bits=256)
    one = _info(tmp_path, INTEL, cores=2, fma_units=1)
    fast = _info(tmp_path, INTEL, cores=2, clock_ghz=4.0)
    assert half.peak_flops() == pytest.approx(base.peak_flops() * 256 / 512 * base.clock_ghz / half.clock_ghz)
    assert one.flops_per_cycle() == base.flops_per_cycle() // 2
    assert fast.clock_source == "given" and fast.peak_flops() == pytest.approx(2 * 4e9 * 64)
    assert set(base.to_frame()["source"]) >= {"assumed", "flags", "derived"}


def test_arm_features_line(tmp_path):
    info = _info(tmp_path, ARM, cores=1, clock_ghz=2.0)
    assert info.simd == "NEON" and info.fma and info.flops_per_cycle("float32") == 16


@pytest.mark.parametrize("kw,match", [
    (dict(clock_ghz=0), "clock_ghz must be a positive"),
    (dict(clock_ghz=float("nan")), "clock_ghz must be a positive"),
    (dict(fma_units=0), "fma_units must be a positive integer"),
    (dict(datapath_bits=300), "datapath_bits must be one of"),
    (dict(cores=True), "cores must be a positive integer"),
])
def test_bad_assumptions(tmp_path, kw, match):
    with pytest.raises(ConfigError, match=match):
        _info(tmp_path, INTEL, **kw)


def test_bad_cpuinfo(tmp_path):
    with pytest.raises(DataError, match="no 'flags'"):
        _info(tmp_path, "model name : x\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        C.cpu_info(tmp_path / "missing")
    with pytest.raises(ConfigError, match="gives no clock"):
        if Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").exists():
            raise ConfigError("gives no clock (cpufreq present: skipped)")
        _info(tmp_path, "flags : sse2\n")
    with pytest.raises(ConfigError, match="dtype must be one of"):
        C.cpu_info().flops_per_cycle("int8")


# --- matmul -------------------------------------------------------------------------------------------------------------

def _counted_matmul(a, b):
    "A naive product that counts its floating-point operations, accumulating into zero as BLAS does (beta=0)."
    n, k = a.shape
    m = b.shape[1]
    c, ops = np.zeros((n, m)), 0
    for i in range(n):
        for j in range(m):
            acc = 0.0
            for t in range(k):
                acc = acc + a[i, t] * b[t, j]
                ops += 2
            c[i, j] = acc
    return c, ops


@pytest.mark.parametrize("n,m,k", [(1, 1, 1), (3, 4, 5), (7, 2, 6)])
def test_flop_count_matches_an_instrumented_loop(n, m, k):
    rng = np.random.default_rng(n * 100 + m * 10 + k)
    a, b = rng.standard_normal((n, k)), rng.standard_normal((k, m))
    c, ops = _counted_matmul(a, b)
    np.testing.assert_allclose(c, a @ b, rtol=1e-12)
    assert C.matmul_flop_count(n, m, k) == ops
    assert C.matmul_flop_count(n) == 2 * n**3


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_utilization_in_the_unit_interval_or_flagged(dtype):
    r = C.matmul_flops(128, dtype, threads=1, repeats=2)
    assert r.flop == 2 * 128**3 and r.threads == 1 and r.best_s <= r.median_s
    assert r.gflops == pytest.approx(r.flop / r.best_s / 1e9)
    assert r.utilization == pytest.approx(r.gflops / r.peak_gflops)
    assert r.utilization > 0
    assert r.plausible == (r.utilization <= 1) and (r.plausible or "assumption is too low" in r.note)


def test_utilization_above_one_is_reported_not_clipped(tmp_path):
    info = _info(tmp_path, OLD, cores=1, clock_ghz=0.01)  # 80 MFLOP/s of 'peak'
    r = C.matmul_flops(128, "float32", 1, repeats=2, info=info)
    assert r.utilization > 1 and not r.plausible and "0.01 GHz, given" in r.note


def test_a_generous_peak_gives_a_plausible_utilization(tmp_path):
    info = _info(tmp_path, INTEL, cores=os.cpu_count() or 1, clock_ghz=10.0)  # above any real clock
    r = C.matmul_flops(128, "float64", 1, repeats=2, info=info)
    assert 0 < r.utilization <= 1 and r.plausible and r.note == ""


def test_threads_are_restored():
    from threadpoolctl import threadpool_info
    before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    C.matmul_flops(64, threads="all", repeats=1)
    assert [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] == before
    torch = pytest.importorskip("torch")
    t0 = torch.get_num_threads()
    r = C.matmul_flops(64, "float32", threads=1, repeats=1, backend="torch")
    assert torch.get_num_threads() == t0 and r.backend == "torch"


@pytest.mark.parametrize("kw,match", [
    (dict(n=0), "n must be a positive integer"),
    (dict(n=-3), "n must be a positive integer"),
    (dict(n=2.5), "n must be a positive integer"),
    (dict(dtype="float16"), "dtype must be one of"),
    (dict(dtype="complex64"), "dtype must be one of"),
    (dict(backend="cupy"), "backend must be one of"),
    (dict(repeats=0), "repeats must be a positive"),
    (dict(threads=0), "threads must be a positive"),
    (dict(threads=10**6), "exceeds"),
    (dict(info="cpu"), "info must be a CPUInfo"),
])
def test_matmul_bad_input(kw, match):
    with pytest.raises(ConfigError, match=match):
        C.matmul_flops(**({"n": 16} | kw))


def test_matmul_table():
    t = C.matmul_table([C.matmul_flops(32, repeats=1)])
    assert list(t.columns) == ["backend", "dtype", "n", "threads", "GFLOP/s", "peak", "utilization", "plausible"]
    with pytest.raises(ConfigError):
        C.matmul_table([])


# --- memory -------------------------------------------------------------------------------------------------------------

def test_stream_kernels_compute_what_they_name():
    a, b, c = np.ones(4096), np.full(4096, 2.0), np.full(4096, 0.5)
    kernels = C._kernels(a, b, c, 3.0)
    kernels["copy"][2]()
    np.testing.assert_array_equal(b, a)
    b[:] = 2.0
    kernels["triad"][2]()
    np.testing.assert_allclose(a, 2.0 + 3.0 * 0.5)
    if "triad_torch" in kernels:
        a[:] = 0
        kernels["triad_torch"][2]()
        np.testing.assert_allclose(a, 2.0 + 3.0 * 0.5)
    assert {k: v[1] for k, v in kernels.items()}["triad"] == 24


def test_memory_bandwidth_table():
    bw = C.memory_bandwidth(4, repeats=2, kernels=["copy", "copyto", "triad"])
    assert list(bw["kernel"]) == ["copy", "copyto", "triad"]
    assert (bw["best GB/s"] >= bw["median GB/s"]).all() and (bw["best GB/s"] > 0).all()
    assert list(bw["bytes/elem"]) == [16, 16, 24]


@pytest.mark.parametrize("kw,match", [
    (dict(size_mb=0), "size_mb must be a positive"),
    (dict(size_mb=0.001), "at least 8 KiB"),
    (dict(kernels=["copy", "memset"]), "unknown or unavailable kernel"),
    (dict(kernels=[]), "non-empty list"),
    (dict(repeats=-1), "repeats must be a positive"),
])
def test_memory_bad_input(kw, match):
    with pytest.raises(ConfigError, match=match):
        C.memory_bandwidth(**({"size_mb": 1} | kw))


# --- disk ---------------------------------------------------------------------------------------------------------------

def test_disk_throughput_removes_its_file(tmp_path):
    r = C.disk_throughput(tmp_path, size_mb=4, block_kb=256)
    assert list(tmp_path.iterdir()) == []
    assert r.size_mb == 4 and r.write_mb_s > 0 and r.cached_read_mb_s > 0
    assert r.filesystem != "" and r.cache_dropped == hasattr(os, "posix_fadvise")
    t = r.to_frame()
    assert list(t["operation"]) == ["write + fsync", "read, just written", "read after DONTNEED"]


def test_disk_file_removed_when_reading_fails(tmp_path, monkeypatch):
    def broken(path, buf):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(C, "_read_all", broken)
    with pytest.raises(OSError):
        C.disk_throughput(tmp_path, size_mb=1)
    assert list(tmp_path.iterdir()) == []


def test_disk_without_fadvise_says_so(tmp_path, monkeypatch):
    def refuse(*a):
        raise OSError(22, "Invalid argument")
    monkeypatch.setattr(os, "posix_fadvise", refuse)
    r = C.disk_throughput(tmp_path, size_mb=1)
    assert not r.cache_dropped and r.cold_read_mb_s is None
    assert r.to_frame()["served by"].iloc[2] == "not measured" and list(tmp_path.iterdir()) == []


def test_disk_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="is not an existing folder"):
        C.disk_throughput(tmp_path / "missing")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is not an existing folder"):
        C.disk_throughput(tmp_path / "f")
    with pytest.raises(ConfigError, match="not writable"):
        C.disk_throughput("/proc", size_mb=1)  # refused even for root
    with pytest.raises(ConfigError, match="size_mb must be a positive"):
        C.disk_throughput(tmp_path, size_mb=0)
    with pytest.raises(DataError, match="must be a str or os.PathLike"):
        C.disk_throughput(42)


# --- phases and the job ---------------------------------------------------------------------------------------------

def test_phases_add_up_to_the_total():
    with C.PhaseTimer() as t:
        for _ in range(3):
            with t.phase("load"):
                np.ones(100_000).sum()
            with t.phase("compute"):
                np.sort(np.random.default_rng(0).random(100_000))
    tab = t.table().set_index("phase")
    assert list(tab.index) == ["load", "compute", "other", "total"]
    parts = tab.loc[["load", "compute", "other"], "wall_s"].sum()
    assert parts == pytest.approx(t.total_s, abs=2e-3)
    assert tab.loc["total", "share"] == 1


def test_phase_timer_misuse():
    t = C.PhaseTimer()
    with pytest.raises(ConfigError, match="inside the timer"):
        with t.phase("load"):
            pass
    with pytest.raises(ConfigError, match="has not finished"):
        t.table()
    with t:
        with pytest.raises(ConfigError, match="phase name"):
            with t.phase("total"):
                pass
        with pytest.raises(ConfigError, match="do not nest"):
            with t.phase("a"), t.phase("b"):
                pass
    with pytest.raises(ConfigError, match="times one job"):
        with t:
            pass


def test_mlp_flops_are_three_forward_matmuls():
    sizes, n = [12, 8, 1], 50
    forward = C.matmul_flop_count(n, 8, 12) + C.matmul_flop_count(n, 1, 8)
    assert C.mlp_train_flops(sizes, n, 3) == 3 * 3 * forward
    for bad in ([5], "5,1", [5, 0]):
        with pytest.raises(ConfigError):
            C.mlp_train_flops(bad, 10)


@pytest.fixture(scope="module")
def jobdir(tmp_path_factory):
    return C.prepare_job_data(tmp_path_factory.mktemp("job"), "2013-01-01", "2013-01-03")


def test_both_sources_load_the_same_rows(jobdir):
    Xp, yp = C.load_job_frame(jobdir, "parquet")
    Xd, yd = C.load_job_frame(jobdir, "duckdb")
    assert len(Xp) == len(Xd) > 1000 and yp.sum() == yd.sum()
    assert list(Xp.columns) == ["sched_hour", "sched_dow", "distance", "carrier", "origin", "dest"]
    assert sorted(Xp["sched_dow"].unique()) == sorted(Xd["sched_dow"].unique()) == [1, 2, 3]  # Tue-Thu, Jan 1-3 2013
    np.testing.assert_allclose(np.sort(Xp["distance"]), np.sort(Xd["distance"]))


@pytest.mark.parametrize("model", ["hgb", "mlp"])
def test_load_plus_compute_is_the_total(jobdir, model):
    if model == "mlp":
        pytest.importorskip("torch")
    j = C.profile_job(jobdir, model, "parquet", threads=1, max_iter=10, epochs=1, hidden=8)
    assert j.load_s > 0 and j.compute_s > 0
    startup = j.timer.seconds("startup")
    assert (startup > 0) == (model == "mlp")
    covered = j.load_s + startup + j.compute_s  # phases never overlap nor exceed the job; 'other' is the rest
    other = j.timer.table().set_index("phase").loc["other", "wall_s"]  # rounded to ms
    assert j.timer.total_s - covered >= 0 and other == pytest.approx(j.timer.total_s - covered, abs=1e-3)
    row = j.row()
    assert row["threads"] == 1 and 0 < row["load share"] < 1 and j.rows > 1000
    if model == "mlp":
        X, _ = C.load_job_frame(jobdir, "parquet")
        width = 3 + sum(X[c].nunique() for c in ["carrier", "origin", "dest"])  # numerics + one-hot columns
        assert j.flop == C.mlp_train_flops([width, 8, 8, 1], j.rows, 1)
        assert j.gflops == pytest.approx(j.flop / j.compute_s / 1e9)
    else:
        assert j.flop is None and j.gflops is None


@pytest.mark.parametrize("kw,match", [
    (dict(model="svm"), "model must be one of"),
    (dict(source="csv"), "source must be one of"),
    (dict(max_iter=0), "max_iter must be a positive"),
    (dict(batch_size=-1), "batch_size must be a positive"),
    (dict(threads=0), "threads must be a positive"),
])
def test_job_bad_input(jobdir, kw, match):
    with pytest.raises(ConfigError, match=match):
        C.profile_job(jobdir, **kw)


def test_job_without_data(tmp_path):
    with pytest.raises(ConfigError, match="run prepare_job_data"):
        C.profile_job(tmp_path)
    with pytest.raises(ConfigError, match="run prepare_job_data"):
        C.load_job_frame(tmp_path, "duckdb")
