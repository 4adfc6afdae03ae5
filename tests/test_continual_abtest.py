"""continual.abtest: the traffic split refused when it is not a distribution, sticky and independent hash assignment,
sample sizes and power equal to statsmodels' power functions, the z / chi-squared / Welch tests and their intervals
equal to statsmodels and scipy on generated data (ties, one arm all zeros or ones, float32), an arm with zero users
named in the error, the SRM check equal to scipy's chisquare and flagging a planted 50.5/49.5 split, the mSPRT's
likelihood ratio against numerical integration of its mixture, its false-positive rate kept under peeking while the
naive test's is not, and a planted better challenger winning at the planned power."""
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_effectsize, proportions_ztest

from mlsys.continual import abtest as A
from mlsys.core import ConfigError, DataError

ALTS = ("two-sided", "larger", "smaller")


def _tol(p, n, k=3.5):
    return k * math.sqrt(p * (1 - p) / n)


# --- the split and the assignment -------------------------------------------------------------------------------

@pytest.mark.parametrize("split, message", [
    ({"A": 0.5, "B": 0.4}, "sum to 1"),
    ({"A": 0.5, "B": 0.5 + 2e-9}, "sum to 1"),
    ({"A": 1.5, "B": -0.5}, "'B'"),
    ({"A": float("nan"), "B": 0.5}, "finite"),
    ({"A": float("inf")}, "finite"),
    ([("A", 0.5), ("A", 0.5)], "twice"),
    ({"": 1.0}, "non-empty"),
    ({"  ": 1.0}, "non-empty"),
    ({1: 1.0}, "non-empty strings"),
    ({}, "empty"),
    ({"A": "0.5", "B": 0.5}, "number"),
    ({"A": True}, "number"),
    (0.5, "map arm names"),
    ("AB", "map arm names"),
])
def test_bad_split(split, message):
    with pytest.raises(ConfigError, match=message):
        A.check_split(split)
    with pytest.raises(ConfigError):
        A.assign_arms(["u1"], split)


def test_split_within_tolerance_and_zero_weight_arm():
    assert A.check_split({"A": 0.5, "B": 0.5 + 5e-10}) == {"A": 0.5, "B": 0.5 + 5e-10}
    arms = A.assign_arms(np.arange(2000), {"A": 0.5, "off": 0.0, "B": 0.5})
    assert set(arms) == {"A", "B"}


def test_assignment_is_sticky_proportional_and_independent_across_salts():
    ids = [f"user-{i}" for i in range(30_000)] + ["é-ü-ß", "tail\n", ""]
    split = {"a": 0.2, "b": 0.3, "c": 0.5}
    arms = A.assign_arms(ids, split, salt="exp-1")
    # sticky: any order, any subset, repeated ids
    perm = np.random.default_rng(0).permutation(len(ids))
    np.testing.assert_array_equal(A.assign_arms([ids[i] for i in perm], split, salt="exp-1"), arms[perm])
    np.testing.assert_array_equal(A.assign_arms(ids[:5] * 3, split, salt="exp-1"), np.tile(arms[:5], 3))
    # proportions: a chi-squared goodness of fit against the split does not reject
    counts = pd.Series(arms).value_counts()
    assert stats.chisquare([counts[a] for a in split], [len(ids) * w for w in split.values()]).pvalue > 0.001
    # another salt: independent of this one
    other = A.assign_arms(ids, split, salt="exp-2")
    assert stats.chi2_contingency(pd.crosstab(arms, other))[1] > 0.001
    assert (arms != other).mean() > 0.5
    # long salts count in full (a key cut at 64 bytes would make these two experiments one)
    long1, long2 = "x" * 70 + "-ranker", "x" * 70 + "-banner"
    assert (A.assign_arms(ids[:2000], split, salt=long1) != A.assign_arms(ids[:2000], split, salt=long2)).mean() > 0.4
    # ints and their text are the same unit
    np.testing.assert_array_equal(A.assign_arms([7, 8], split), A.assign_arms(["7", "8"], split))


def test_assignment_refuses_missing_ids_and_bad_salt():
    with pytest.raises(DataError, match="missing"):
        A.assign_arms(["a", None, "c"], {"A": 1.0})
    with pytest.raises(DataError, match="missing"):
        A.unit_hash(pd.Series([1.0, float("nan")]))
    with pytest.raises(ConfigError, match="salt"):
        A.unit_hash(["a"], salt=3)


def test_unit_vs_request_randomization():
    t = A.unit_aa_simulation(n_users=400, requests=10, n_sims=1500, seed=1)
    fpr = t["false_positive_rate"].to_numpy()
    assert fpr[0] > 0.05 + 4 * _tol(0.05, 1500)  # user-assigned, request-analysed: inflated
    assert abs(fpr[1] - 0.05) < _tol(0.05, 1500)  # user-level analysis: nominal
    assert abs(fpr[2] - 0.05) < _tol(0.05, 1500)  # request-assigned: nominal, but users see both arms
    assert t["users_in_both_arms"].iloc[2] > 0.99


# --- planning: equal to statsmodels' power functions ----------------------------------------------------------------

def _proportion_case(rng):
    while True:
        p_c, p_t = rng.uniform(0.02, 0.98, 2)
        h = A.cohens_h(p_c, p_t)
        if 0.03 < abs(h) < 1.5:
            alt = ALTS[rng.integers(3)]
            if alt == "larger" and h < 0 or alt == "smaller" and h > 0:
                p_c, p_t = p_t, p_c
            return p_c, p_t, rng.choice([0.01, 0.05, 0.1, rng.uniform(0.001, 0.2)]), rng.uniform(0.5, 0.97), \
                rng.choice([1.0, rng.uniform(0.2, 5)]), alt


def test_proportion_power_and_sample_size_equal_statsmodels():
    rng = np.random.default_rng(0)
    for _ in range(200):
        p_c, p_t, alpha, power, ratio, alt = _proportion_case(rng)
        es = proportion_effectsize(p_t, p_c)
        n = float(rng.uniform(3, 50_000))
        ref_power = NormalIndPower().power(es, n, alpha, ratio=ratio, alternative=alt)
        assert A.power_proportions(p_c, p_t, n, alpha, ratio, alt) == pytest.approx(ref_power, rel=1e-10, abs=1e-12)
        s = A.sample_size_proportions(p_c, p_t, alpha, power, ratio, alt)
        ref_n = NormalIndPower().solve_power(es, nobs1=None, alpha=alpha, power=power, ratio=ratio, alternative=alt)
        assert s.n_exact == pytest.approx(ref_n, rel=1e-6)
        assert s.power >= power - 1e-12 and s.n_control == math.ceil(s.n_exact - 1e-9)
        assert s.n_treatment == math.ceil(s.n_exact * ratio - 1e-9)


def test_means_power_and_sample_size_equal_statsmodels():
    rng = np.random.default_rng(1)
    nans = 0
    for _ in range(80):
        d = float(rng.choice([-1, 1]) * rng.uniform(0.05, 1.5))
        sd = float(rng.uniform(0.1, 20))
        alt = ALTS[rng.integers(3)]
        if alt == "larger":
            d = abs(d)
        elif alt == "smaller":
            d = -abs(d)
        alpha, power, ratio = float(rng.choice([0.01, 0.05, 0.1])), float(rng.uniform(0.5, 0.95)), float(rng.choice([1.0, rng.uniform(0.3, 3)]))
        n = float(rng.uniform(3, 5000))
        ref_power = TTestIndPower().power(d, n, alpha, ratio=ratio, alternative=alt)
        ours = A.power_means(d * sd, sd, n, alpha, ratio, alt)
        assert 0 <= ours <= 1  # scipy's noncentral t is NaN in the far tail at large noncentrality; ours is not
        if np.isfinite(ref_power):
            assert ours == pytest.approx(ref_power, rel=1e-9, abs=1e-12)
        else:
            nans += 1
        s = A.sample_size_means(d * sd, sd, alpha, power, ratio, alt)
        ref_n = TTestIndPower().solve_power(d, nobs1=None, alpha=alpha, power=power, ratio=ratio, alternative=alt)
        assert s.n_exact == pytest.approx(ref_n, rel=1e-5)
        assert s.power >= power - 1e-12
    assert nans < 40


@pytest.mark.parametrize("kwargs, message", [
    (dict(p_control=0.3, p_treatment=0.3), "zero"),
    (dict(p_control=0.0, p_treatment=0.3), "p_control"),
    (dict(p_control=0.3, p_treatment=1.0), "p_treatment"),
    (dict(p_control=0.3, p_treatment=float("nan")), "p_treatment"),
    (dict(p_control=0.3, p_treatment=0.35, alpha=0.0), "alpha"),
    (dict(p_control=0.3, p_treatment=0.35, power=0.03), "power"),
    (dict(p_control=0.3, p_treatment=0.35, power=1.0), "power"),
    (dict(p_control=0.3, p_treatment=0.35, ratio=0), "ratio"),
    (dict(p_control=0.3, p_treatment=0.35, ratio=float("inf")), "ratio"),
    (dict(p_control=0.3, p_treatment=0.35, alternative="bigger"), "alternative"),
    (dict(p_control=0.35, p_treatment=0.3, alternative="larger"), "other sign"),
    (dict(p_control=0.3, p_treatment="0.35"), "number"),
])
def test_bad_plans(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        A.sample_size_proportions(**kwargs)


def test_bad_mean_plans():
    with pytest.raises(ConfigError, match="sd"):
        A.sample_size_means(1.0, 0.0)
    with pytest.raises(ConfigError, match="zero"):
        A.sample_size_means(0.0, 1.0)
    with pytest.raises(ConfigError, match="degrees of freedom"):
        A.power_means(1.0, 1.0, 1.0)
    with pytest.raises(ConfigError, match="too small"):
        A.sample_size_proportions(0.3, 0.3 + 1e-9)


# --- the tests after: equal to statsmodels and scipy ----------------------------------------------------------------

def test_proportion_test_equals_statsmodels_and_chi2():
    rng = np.random.default_rng(2)
    cases = 0
    for i in range(400):
        n_c, n_t = (int(v) for v in rng.choice([1, 2, 5, 30, 1000, 50_000], 2)) if i % 3 else rng.integers(1, 300, 2)
        x_c, x_t = rng.binomial(n_c, rng.uniform()), rng.binomial(n_t, rng.uniform())
        if i % 10 == 0:  # one arm all zeros or all ones
            x_c = 0 if i % 20 else n_c
        pooled = (x_c + x_t) / (n_c + n_t)
        alpha = float(rng.choice([0.05, 0.01, 0.1]))
        r = A.proportion_test(x_c, n_c, x_t, n_t, alpha=alpha)
        assert r.difference == pytest.approx(x_t / n_t - x_c / n_c, abs=1e-15)
        lo, hi = confint_proportions_2indep(x_t, n_t, x_c, n_c, method="wald", compare="diff", alpha=alpha)
        assert (r.ci_low, r.ci_high) == pytest.approx((lo, hi), rel=1e-9, abs=1e-12)
        if pooled in (0.0, 1.0):  # both arms all zeros / all ones: equal rates, no evidence
            assert (r.statistic, r.p_value) == (0.0, 1.0)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            z, p = proportions_ztest([x_t, x_c], [n_t, n_c])
        assert r.statistic == pytest.approx(z, rel=1e-9, abs=1e-12)
        assert r.p_value == pytest.approx(p, rel=1e-8, abs=1e-300)
        table = [[x_c, n_c - x_c], [x_t, n_t - x_t]]
        if min(map(min, table)) >= 0 and all(sum(row) > 0 for row in zip(*table)):
            assert r.statistic**2 == pytest.approx(stats.chi2_contingency(table, correction=False)[0], rel=1e-8, abs=1e-10)
        cases += 1
    assert cases > 300
    assert A.proportion_test(np.int64(3), 10.0, 4, np.int32(10)).n_control == 10  # integer-valued numbers of any type


def test_welch_equals_scipy_with_ties_constant_arm_and_float32():
    rng = np.random.default_rng(3)
    for i in range(300):
        n_c, n_t = rng.integers(2, 200, 2)
        kind = i % 4
        if kind == 0:  # many ties
            a, b = rng.integers(0, 3, n_c).astype(float), rng.integers(0, 4, n_t).astype(float)
        elif kind == 1:  # float32 input
            a, b = rng.normal(0, 1, n_c).astype(np.float32), rng.normal(0.3, 2, n_t).astype(np.float32)
        elif kind == 2:  # one arm constant (all zeros or ones)
            a, b = np.full(n_c, float(i % 8 == 2)), rng.binomial(1, 0.4, n_t).astype(float)
            if b.var() == 0:
                b[0] = 1 - b[0]
        else:  # 0/1 metric, both arms
            a, b = rng.binomial(1, 0.3, n_c), rng.binomial(1, 0.35, n_t)
        if np.var(a) + np.var(b) == 0:
            continue
        alpha = float(rng.choice([0.05, 0.1]))
        r = A.welch_test(a, b, alpha=alpha)
        with warnings.catch_warnings():  # scipy warns of precision loss for a constant arm; the values are exact
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = stats.ttest_ind(np.asarray(b, float), np.asarray(a, float), equal_var=False)
        assert r.statistic == pytest.approx(ref.statistic, rel=1e-9)
        assert r.p_value == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300)
        assert r.df == pytest.approx(ref.df, rel=1e-9)
        assert (r.ci_low, r.ci_high) == pytest.approx(tuple(ref.confidence_interval(1 - alpha)), rel=1e-9, abs=1e-12)


def test_tests_refuse_empty_and_bad_arms():
    with pytest.raises(DataError, match="'treatment' has 0 users"):
        A.proportion_test(3, 10, 0, 0)
    with pytest.raises(DataError, match="'ctl' has 0 users"):
        A.proportion_test(0, 0, 3, 10, control="ctl")
    with pytest.raises(DataError, match="successes"):
        A.proportion_test(11, 10, 3, 10)
    with pytest.raises(DataError, match="whole number"):
        A.proportion_test(2.5, 10, 3, 10)
    with pytest.raises(DataError, match="'B' has 0 users"):
        A.welch_test([1.0, 2.0], [], control="A", treatment="B")
    with pytest.raises(DataError, match="at least 2"):
        A.welch_test([1.0, 2.0], [3.0])
    with pytest.raises(DataError, match="constant"):
        A.welch_test([1.0, 1.0], [2.0, 2.0, 2.0])
    with pytest.raises(DataError, match="missing"):
        A.welch_test([1.0, np.nan], [2.0, 3.0])
    with pytest.raises(ConfigError, match="alpha"):
        A.welch_test([1.0, 2.0], [2.0, 3.0], alpha=1.5)
    df = pd.DataFrame({"arm": ["A", "A", "A", "C"], "y": [0, 1, 1, 0]})
    with pytest.raises(DataError, match="'B' has 0 users"):
        A.ab_test(df, "y", "A", "B")
    with pytest.raises(DataError, match="0/1"):
        A.ab_test(df.assign(arm=["A", "B", "A", "B"], y=[0, 2, 1, 0]), "y", "A", "B")
    with pytest.raises(ConfigError, match="kind"):
        A.ab_test(df, "y", "A", "C", kind="median")
    with pytest.raises(DataError, match="no_such"):
        A.ab_test(df, "no_such", "A", "C")


def test_ab_test_from_a_frame_equals_the_count_form():
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"arm": rng.choice(["ctl", "new"], 500), "y": rng.binomial(1, 0.3, 500)})
    r = A.ab_test(df, "y", "ctl", "new")
    c, t = df[df.arm == "ctl"].y, df[df.arm == "new"].y
    assert r == A.proportion_test(c.sum(), len(c), t.sum(), len(t), control="ctl", treatment="new")
    m = A.ab_test(df, "y", "ctl", "new", kind="mean")
    assert m.p_value == pytest.approx(stats.ttest_ind(t, c, equal_var=False).pvalue, rel=1e-9)


# --- sample-ratio mismatch ----------------------------------------------------------------------------------------

def test_srm_equals_scipy_chisquare():
    rng = np.random.default_rng(5)
    for _ in range(200):
        k = int(rng.integers(2, 5))
        w = rng.dirichlet(np.ones(k))
        w[-1] = 1 - w[:-1].sum()
        split = {f"arm{i}": float(v) for i, v in enumerate(w)}
        counts = rng.multinomial(int(rng.integers(1, 100_000)), w)
        r = A.srm_check(dict(zip(split, counts.tolist())), split)
        ref = stats.chisquare(counts, counts.sum() * np.array(list(split.values())))
        assert r.statistic == pytest.approx(ref.statistic, rel=1e-9, abs=1e-12)
        assert r.p_value == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-300)


def test_srm_flags_a_planted_imbalance_and_not_a_fair_split():
    n = 1_000_000
    half = {"control": 0.5, "treatment": 0.5}
    assert A.srm_check({"control": int(0.505 * n), "treatment": n - int(0.505 * n)}, half).mismatch
    rng = np.random.default_rng(6)
    fair = rng.binomial(n, 0.5, 2000)
    flags = np.mean([A.srm_check({"control": int(c), "treatment": n - int(c)}, half, alpha=0.05).mismatch for c in fair])
    assert abs(flags - 0.05) < _tol(0.05, 2000)
    # from the arm of every unit; an arm missing from the logs counts 0
    labels = np.array(["control"] * 600 + ["treatment"] * 400)
    assert A.srm_check(labels, half).observed == {"control": 600, "treatment": 400}
    assert A.srm_check({"control": 50}, half).mismatch


def test_srm_bad_input():
    with pytest.raises(DataError, match="not in the split"):
        A.srm_check({"control": 5, "other": 5}, {"control": 0.5, "treatment": 0.5})
    with pytest.raises(DataError, match="no units"):
        A.srm_check({"control": 0}, {"control": 0.5, "treatment": 0.5})
    with pytest.raises(DataError, match=">= 0"):
        A.srm_check({"control": -5, "treatment": 10}, {"control": 0.5, "treatment": 0.5})
    with pytest.raises(ConfigError, match="sum to 1"):
        A.srm_check({"control": 5}, {"control": 0.5, "treatment": 0.6})
    assert A.srm_check({"A": 10, "off": 1}, {"A": 1.0, "off": 0.0}).mismatch  # traffic to a switched-off arm


# --- peeking and the mSPRT ----------------------------------------------------------------------------------------

def test_msprt_likelihood_ratio_equals_its_mixture_integral():
    rng = np.random.default_rng(7)
    for _ in range(25):
        n_c, n_t = rng.integers(50, 5000, 2)
        x_c, x_t = rng.binomial(n_c, 0.3), rng.binomial(n_t, rng.uniform(0.25, 0.4))
        tau = float(rng.uniform(0.005, 0.1))
        p = (x_c + x_t) / (n_c + n_t)
        s = math.sqrt(p * (1 - p) * (1 / n_c + 1 / n_t))
        z = x_t / n_t - x_c / n_c
        def mixture(th, z=z, s=s, tau=tau):
            return stats.norm.pdf(z, th, s) / stats.norm.pdf(z, 0, s) * stats.norm.pdf(th, 0, tau)
        lr = integrate.quad(mixture, -12 * tau, 12 * tau, points=[z], limit=200)[0]
        assert A.msprt_pvalues(x_c, n_c, x_t, n_t, tau) == pytest.approx(min(1.0, 1 / lr), rel=1e-6)


def test_msprt_pvalues_never_increase_and_refuse_bad_input():
    n = np.arange(100, 2100, 100)
    rng = np.random.default_rng(8)
    p = A.msprt_pvalues(rng.binomial(100, 0.3, (50, 20)).cumsum(1), n, rng.binomial(100, 0.31, (50, 20)).cumsum(1), n, 0.02)
    assert (np.diff(p, axis=1) <= 0).all() and ((p > 0) & (p <= 1)).all()
    assert A.msprt_pvalues(0, 10, 0, 10, 0.05) == 1.0  # no variance yet: no evidence
    with pytest.raises(ConfigError, match="tau"):
        A.msprt_pvalues(1, 10, 1, 10, 0.0)
    with pytest.raises(DataError, match="at least one unit"):
        A.msprt_pvalues(0, 0, 1, 10, 0.02)
    with pytest.raises(DataError, match="successes"):
        A.msprt_pvalues(11, 10, 1, 10, 0.02)
    with pytest.raises(ConfigError, match="looks"):
        A.peeking_simulation(0.3, 0.3, 5, looks=10)
    with pytest.raises(ConfigError, match="n_sims"):
        A.peeking_simulation(0.3, 0.3, 1000, n_sims=10**12)


def test_peeking_inflates_the_naive_test_and_not_the_msprt():
    n_sims = 3000
    aa = A.peeking_simulation(0.3, 0.3, 5000, looks=15, n_sims=n_sims, tau=0.02, seed=9)["rejection_rate"].to_numpy()
    assert abs(aa[0] - 0.05) < _tol(0.05, n_sims)  # one look: nominal
    assert aa[1] > 0.05 + 5 * _tol(0.05, n_sims)  # 15 looks: inflated
    assert aa[2] <= 0.05 + _tol(0.05, n_sims)  # mSPRT under the same peeking: kept
    plan = A.sample_size_proportions(0.3, 0.33, power=0.8)
    ab = A.peeking_simulation(0.3, 0.33, plan.n_control, looks=15, n_sims=n_sims, tau=0.03, seed=10)["rejection_rate"].to_numpy()
    assert abs(ab[0] - 0.8) < _tol(0.8, n_sims)
    assert ab[2] > 0.45  # the mSPRT still finds the planted effect at the same maximum size most of the time


# --- done means: a planted better challenger wins at the planned power -------------------------------------------

def test_planted_challenger_wins_at_the_planned_power():
    plan = A.sample_size_proportions(0.2, 0.25, power=0.8)
    # many experiments through the counts ...
    rng = np.random.default_rng(11)
    x_c, x_t = rng.binomial(plan.n_control, 0.2, 2500), rng.binomial(plan.n_treatment, 0.25, 2500)
    won = np.mean([(r.significant and r.difference > 0) for r in
                   (A.proportion_test(c, plan.n_control, t, plan.n_treatment) for c, t in zip(x_c, x_t))])
    assert abs(won - plan.power) < _tol(0.8, 2500)
    # ... and end to end through hash assignment of user ids (random arm sizes, ab_test on a frame)
    won_e2e = A.simulate_power(0.2, 0.25, plan, n_sims=150, seed=12)
    assert abs(won_e2e - 0.8) < _tol(0.8, 150)
    # a worse challenger essentially never wins
    worse = np.mean([(r.significant and r.difference > 0) for r in
                     (A.proportion_test(c, plan.n_control, t, plan.n_treatment)
                      for c, t in zip(x_c, rng.binomial(plan.n_treatment, 0.18, 2500)))])
    assert worse < 0.01
