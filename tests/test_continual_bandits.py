"Bandits (mlsys.continual.bandits): sublinear regret, UCB1's log bound, Thompson's convergence, epsilon=1 uniformity, seeds, bad input, off-policy unbiasedness, and river as a reference."
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlsys.continual.bandits import (
    UCB1,
    BernoulliProblem,
    EpsilonGreedy,
    LinearThompson,
    LinUCB,
    PopularityPolicy,
    RandomPolicy,
    RecommendationProblem,
    ReplayProblem,
    ThompsonBeta,
    ThompsonGaussian,
    check_log,
    doubly_robust,
    ips,
    policy_value,
    regret_curves,
    run_contextual,
    run_bandit,
    snips,
)
from mlsys.core import ConfigError, DataError

TWO_ARMS = BernoulliProblem([0.4, 0.6])  # gap 0.2


def _mean_regret(make, problem, horizon, seeds, at):
    c = regret_curves(make, problem, horizon, seeds=seeds)
    return np.array([c.loc[c["t"] == t, "regret"].mean() for t in at])


@pytest.mark.parametrize("make", [
    lambda s: UCB1(2, random_state=s),
    lambda s: ThompsonBeta(2, random_state=s),
    lambda s: EpsilonGreedy(2, epsilon=1.0, decay=0.05, random_state=s),
], ids=["ucb1", "thompson", "decaying-eps"])
def test_regret_is_sublinear_on_a_stationary_problem(make):
    at = np.array([250, 500, 1000, 2000])
    per_round = _mean_regret(make, TWO_ARMS, 2000, range(12), at) / at
    assert np.all(np.diff(per_round) < 0), per_round  # regret(T)/T falls with T
    assert per_round[-1] < 0.5 * per_round[0]


def test_constant_epsilon_regret_is_linear():
    "The contrast: a constant epsilon keeps exploring, so regret/T levels off at about epsilon * gap / 2."
    at = np.array([1000, 2000])
    per_round = _mean_regret(lambda s: EpsilonGreedy(2, epsilon=0.2, random_state=s), TWO_ARMS, 2000, range(12), at) / at
    assert per_round[-1] == pytest.approx(0.2 * 0.2 / 2, abs=0.01)


def test_ucb1_regret_is_below_its_log_bound():
    "Auer et al. (2002), Theorem 1: E[regret(T)] <= 8 ln T / gap + (1 + pi^2 / 3) gap for two arms."
    at = np.array([200, 1000, 3000])
    r = _mean_regret(lambda s: UCB1(2, random_state=s), TWO_ARMS, 3000, range(12), at)
    gap = 0.2
    bound = 8 * np.log(at) / gap + (1 + np.pi**2 / 3) * gap
    assert np.all(r < bound), (r, bound)
    ratio = r / np.log(at)  # past the first rounds regret / ln T grows slowly (a linear regret would triple 1000 -> 3000)
    assert ratio[-1] < 1.6 * ratio[1], ratio


def test_thompson_pulls_the_known_best_arm_most_of_the_time():
    p = BernoulliProblem([0.2, 0.5, 0.8], arms=["old", "mid", "best"])
    share = []
    for s in range(8):
        df = run_bandit(ThompsonBeta(p.arms, random_state=s), p, 1500, random_state=s)
        share.append((df["arm"].iloc[-500:] == "best").mean())
    assert np.mean(share) > 0.95 and min(share) > 0.85, share


def test_gaussian_thompson_finds_the_best_arm():
    p = BernoulliProblem([0.3, 0.7])
    df = run_bandit(ThompsonGaussian(2, prior_mean=0.5, prior_sd=1, noise_sd=0.5, random_state=1), p, 1000)
    assert (df["arm"].iloc[-300:] == 1).mean() > 0.9


def test_epsilon_one_is_uniform():
    b = EpsilonGreedy(["a", "b", "c", "d", "e"], epsilon=1.0, random_state=3)
    rng = np.random.default_rng(0)
    picks = []
    for _ in range(5000):
        a = b.select(); picks.append(a)
        b.update(a, float(a == "a") + 0.1 * rng.random())  # "a" pays best; epsilon = 1 must ignore it
    counts = np.array([picks.count(a) for a in b.arms])
    assert stats.chisquare(counts).pvalue > 0.001, counts


@pytest.mark.parametrize("cls", [EpsilonGreedy, UCB1, ThompsonBeta, ThompsonGaussian])
def test_seeds_give_reproducible_choices(cls):
    p = BernoulliProblem([0.3, 0.5, 0.55])
    runs = [run_bandit(cls(3, random_state=s), p, 400, random_state=7)["arm"].tolist() for s in (5, 5, 6)]
    assert runs[0] == runs[1]
    if cls is not UCB1:  # UCB1 is deterministic up to ties
        assert runs[0] != runs[2]


def test_state_is_json_ready():
    import json
    b = ThompsonBeta(["m1", "m2"], random_state=0).update("m1", 1.0).update("m1", 0.0)
    s = json.loads(json.dumps(b.to_dict()))
    assert s["arms"][0] == {"arm": "m1", "pulls": 2, "mean_reward": 0.5}
    assert s["arms"][1]["mean_reward"] is None and s["t"] == 2
    assert b.counts == {"m1": 2, "m2": 0}


@pytest.mark.parametrize("make, match", [
    (lambda: EpsilonGreedy([]), "arms is empty"),
    (lambda: UCB1(["a", "b", "a"]), "duplicate arm name"),
    (lambda: UCB1("ab"), "list of arm names"),
    (lambda: EpsilonGreedy(2, epsilon=1.5), "epsilon must be <= 1"),
    (lambda: EpsilonGreedy(2, epsilon=-0.1), "epsilon must be >= 0"),
    (lambda: EpsilonGreedy(2, epsilon=float("nan")), "epsilon must be a finite"),
    (lambda: ThompsonBeta(2, alpha=0), "alpha must be > 0"),
    (lambda: ThompsonBeta(2, beta=-1), "beta must be > 0"),
    (lambda: ThompsonGaussian(2, noise_sd=0), "noise_sd must be > 0"),
    (lambda: UCB1(2, random_state=-1), "random_state"),
    (lambda: LinUCB(3, alpha=0), "alpha must be > 0"),
    (lambda: LinUCB(0), "n_features must be a positive integer"),
    (lambda: BernoulliProblem([0.5, 1.2]), "probabilities in"),
])
def test_bad_config_is_a_config_error(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


@pytest.mark.parametrize("b, arm, reward, match", [
    (ThompsonBeta(["a", "b"]), "c", 1.0, "unknown arm 'c'"),
    (ThompsonBeta(["a", "b"]), "a", 1.5, r"reward 1.5 for arm 'a' is outside \[0, 1\]"),
    (ThompsonBeta(["a", "b"]), "a", -0.5, "outside"),
    (UCB1(2), 0, 2.0, "outside"),
    (EpsilonGreedy(2), 0, float("nan"), "finite number"),
    (EpsilonGreedy(2), 0, "1", "finite number"),
])
def test_bad_update_is_a_data_error(b, arm, reward, match):
    with pytest.raises(DataError, match=match):
        b.update(arm, reward)


def test_run_bandit_checks_the_arms_and_replay_rewards():
    with pytest.raises(ConfigError, match="not the problem's"):
        run_bandit(UCB1(3), TWO_ARMS, 10)
    with pytest.raises(ConfigError, match="horizon must be a positive integer"):
        run_bandit(UCB1(2), TWO_ARMS, 0)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        ReplayProblem([[0, 2], [1, 0]])
    p = ReplayProblem(np.array([[1, 0], [1, 1], [0, 0], [1, 0]]), arms=["hgb", "logreg"])
    assert p.means.tolist() == [0.75, 0.25]


# --- off-policy evaluation: a simulated logging policy with an exactly known target value -------------

def _simulated_logs(n_runs=2000, n=200, seed=0):
    rng = np.random.default_rng(seed)
    n_ctx, K = 6, 4
    px = rng.dirichlet(np.ones(n_ctx))  # context distribution
    mu = rng.uniform(0.05, 0.95, (n_ctx, K))  # P(reward = 1 | context, action)
    logits = rng.normal(0, 1, (n_ctx, K))
    logging = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    target = np.exp(2 * mu) / np.exp(2 * mu).sum(1, keepdims=True)  # a better, different stochastic policy
    truth = float(px @ (target * mu).sum(1))
    x = rng.choice(n_ctx, size=(n_runs, n), p=px)
    u = rng.random((n_runs, n, 1))
    a = (u > np.cumsum(logging[x], axis=-1)).sum(-1)
    r = (rng.random((n_runs, n)) < mu[x, a]).astype(float)
    return dict(x=x, a=a, r=r, p=logging[x, a], w=target[x, a], logging=logging, target=target, mu=mu, truth=truth)


def test_ips_is_unbiased_and_snips_has_lower_variance():
    L = _simulated_logs()
    est_ips = np.array([ips(L["r"][k], L["p"][k], L["w"][k]).value for k in range(len(L["r"]))])
    est_sn = np.array([snips(L["r"][k], L["p"][k], L["w"][k]).value for k in range(len(L["r"]))])
    se = est_ips.std(ddof=1) / np.sqrt(len(est_ips))
    assert abs(est_ips.mean() - L["truth"]) < 4 * se, (est_ips.mean(), L["truth"], se)
    assert est_sn.var() < est_ips.var()
    assert abs(est_sn.mean() - L["truth"]) < 0.01  # SNIPS's bias is O(1/n)
    # the reported standard error matches the spread over runs
    assert np.mean([ips(L["r"][k], L["p"][k], L["w"][k]).se for k in range(200)]) == pytest.approx(est_ips.std(), rel=0.1)


def test_doubly_robust_is_unbiased_with_a_wrong_reward_model():
    L = _simulated_logs(n_runs=1000, seed=1)
    q = np.clip(L["mu"] + 0.3, 0, 1)  # a biased reward model: DR stays unbiased because the propensities are right
    est = np.array([doubly_robust(L["r"][k], L["p"][k], L["w"][k], q[L["x"][k], L["a"][k]],
                                  (L["target"] * q).sum(1)[L["x"][k]]).value for k in range(1000)])
    assert abs(est.mean() - L["truth"]) < 4 * est.std(ddof=1) / np.sqrt(len(est))


def test_ips_rejects_bad_logs():
    r, p, w = [1.0, 0.0, 1.0], [0.5, 0.25, 0.25], [1.0, 0.0, 0.5]
    with pytest.raises(DataError, match=r"propensity 0.0 at round 1 is not in \(0, 1\]"):
        ips(r, [0.5, 0.0, 0.25], w)
    with pytest.raises(DataError, match="propensity 1.5 at round 0"):
        snips(r, [1.5, 0.25, 0.25], w)
    with pytest.raises(DataError, match="propensities has 1 missing value"):
        ips(r, [0.5, None, 0.25], w)
    with pytest.raises(DataError, match="propensities is missing"):
        ips(r, None, w)
    with pytest.raises(DataError, match="propensities has 2 values but the log has 3 rounds"):
        ips(r, [0.5, 0.5], w)
    with pytest.raises(DataError, match="target probability 2.0 at round 2"):
        ips(r, p, [1.0, 0.0, 2.0])
    with pytest.raises(DataError, match="the log is empty"):
        ips([], [], [])
    P = np.array([[0.5, 0.5, 0.0], [0.25, 0.75, 0.0], [0.25, 0.5, 0.25]])
    with pytest.raises(DataError, match="logged action 2 at round 1 has logging probability 0: the logging policy could not take it"):
        ips(r, [0.5, 0.25, 0.25], w, actions=[0, 2, 2], logging_probs=P)
    with pytest.raises(DataError, match="logged action 3.0 at round 0 is not one of the 3 actions"):
        ips(r, p, w, actions=[3, 0, 0], logging_probs=P)
    with pytest.raises(DataError, match="disagrees with the logging policy"):
        ips(r, [0.5, 0.25, 0.25], w, actions=[0, 1, 2], logging_probs=P)
    out = check_log(r, [0.5, 0.25, 0.25], w, actions=[0, 0, 2], logging_probs=P)
    assert [x.tolist() for x in out] == [r, [0.5, 0.25, 0.25], w]


# --- contextual: LinUCB and linear Thompson learn a linear reward ---------------------------------------

def _linear_problem(T=1500, K=5, d=4, seed=0):
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 1, (K, d))
    X = rng.normal(0, 1, (T, d))
    return X, 1 / (1 + np.exp(-X @ theta.T))  # P(reward | context, arm) for each round and arm


@pytest.mark.parametrize("make", [lambda: LinUCB(4, alpha=0.5, random_state=0),
                                  lambda: LinearThompson(4, v=0.3, random_state=0)], ids=["linucb", "lints"])
def test_contextual_policies_beat_random_and_approach_the_oracle(make):
    X, mu = _linear_problem()
    rng = np.random.default_rng(1)
    got = {}
    for name, pol in (("learner", make()), ("random", RandomPolicy(0))):
        total = 0.0
        for t in range(len(X)):
            a = pol.select(X[t], range(mu.shape[1]))
            r = float(rng.random() < mu[t, a])
            pol.update(a, X[t], r); total += mu[t, a]
        got[name] = total / len(X)
    oracle = mu.max(1).mean()
    assert got["learner"] > got["random"] + 0.15
    assert got["learner"] > oracle - 0.12, (got, oracle)


def test_linucb_rejects_bad_contexts():
    b = LinUCB(3)
    with pytest.raises(DataError, match=r"contexts must be finite, of shape \(2, 3\)"):
        b.select(np.ones(4), ["a", "b"])
    with pytest.raises(DataError, match="no arm is available"):
        b.select(np.ones(3), [])
    with pytest.raises(DataError, match="context for arm 'a' must be 3 finite numbers"):
        b.update("a", [1.0, np.nan, 0.0], 1.0)


# --- river as a reference: the same policies, compared as statistics over seeds ------------------------

def _river_regret(policy, problem, T, seed):
    rng = np.random.default_rng(seed)
    arms, regret = list(range(len(problem.means))), 0.0
    for _ in range(T):
        r = problem.draw(rng)
        a = policy.pull(arms)
        policy.update(a, float(r[a]))
        regret += problem.means.max() - problem.means[a]
    return regret


@pytest.mark.parametrize("which", ["epsilon-greedy", "ucb1", "thompson"])
def test_regret_matches_rivers_bandits_over_seeds(which):
    river_bandit = pytest.importorskip("river.bandit")
    from river import proba
    p, T, seeds = BernoulliProblem([0.3, 0.45, 0.6]), 600, range(30)
    make_ours = {"epsilon-greedy": lambda s: EpsilonGreedy(3, epsilon=0.1, random_state=s),
                 "ucb1": lambda s: UCB1(3, random_state=s),
                 "thompson": lambda s: ThompsonBeta(3, random_state=s)}[which]
    make_river = {"epsilon-greedy": lambda s: river_bandit.EpsilonGreedy(epsilon=0.1, seed=s),
                  "ucb1": lambda s: river_bandit.UCB(delta=1, seed=s),  # delta = 1 is UCB1: mean + sqrt(2 ln n / n_a)
                  "thompson": lambda s: river_bandit.ThompsonSampling(reward_obj=proba.Beta(), seed=s)}[which]
    ours = np.array([run_bandit(make_ours(s), p, T, random_state=100 + s)["regret"].iloc[-1] for s in seeds])
    theirs = np.array([_river_regret(make_river(s), p, T, 100 + s) for s in seeds])
    se = np.sqrt(ours.var(ddof=1) / len(ours) + theirs.var(ddof=1) / len(theirs))
    assert abs(ours.mean() - theirs.mean()) < 4 * se + 2.0, (ours.mean(), theirs.mean(), se)
    assert stats.mannwhitneyu(ours, theirs).pvalue > 0.001


def _tiny_problem():
    cands = [np.array([10, 11]), np.array([10, 11, 12, 13])]
    return RecommendationProblem(
        users=np.array([1, 2]), candidates=cands, rewards=[np.array([1.0, 0.0]), np.array([0.0, 1.0, 0.0, 1.0])],
        user_features=np.ones((2, 2)), joint=[np.ones((2, 4)), np.ones((4, 4))], score=[np.full(2, 0.5), np.full(4, 0.5)],
        popularity={10: 0.9, 11: 0.5, 12: 0.1, 13: 0.2}, joint_names=["a", "b", "c", "d"])


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_a_uniform_log_is_uniform_when_policy_and_arrivals_share_a_seed(seed):
    "Regression: the arrivals used a generator seeded like the policy's, so (user, shown position) were correlated."
    df = run_contextual(RandomPolicy(seed), _tiny_problem(), 6000, learn=False, random_state=seed)
    counts = df.groupby(["user", "position"]).size().reindex(pd.MultiIndex.from_tuples(
        [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (1, 3)]), fill_value=0).to_numpy()
    expected = 6000 * np.array([1 / 4, 1 / 4, 1 / 8, 1 / 8, 1 / 8, 1 / 8])
    assert stats.chisquare(counts, expected).pvalue > 0.001, counts
    w = (df["movie"].to_numpy() == 11).astype(float)  # target: always show movie 11 (both users have it)
    est = ips(df["reward"], df["propensity"], w)
    assert abs(est.value - 0.5) < 4 * est.se  # true value: user 1 dislikes 11, user 2 likes it


def test_policy_value_and_popularity():
    p = _tiny_problem()
    assert policy_value(PopularityPolicy(p.popularity), p) == 0.5  # shows movie 10 to both
    assert p.best_value() == 1.0


@pytest.mark.parametrize("kwargs, err, match", [
    ({"test_size": 0.0}, ConfigError, "test_size must be > 0"),
    ({"test_size": 1.5}, ConfigError, "test_size must be <= 1"),
    ({"min_candidates": 0}, ConfigError, "min_candidates must be a positive integer"),
    ({"good": "4"}, ConfigError, "good must be a finite number"),
])
def test_movielens_problem_refuses_bad_parameters(kwargs, err, match):
    from mlsys.continual.bandits import movielens_problem
    ratings = pd.DataFrame({"user_id": [1, 2], "movie_id": [10, 11], "rating": [4.0, 3.0], "genres": ["Drama", "Comedy"]})
    with pytest.raises(err, match=match):
        movielens_problem(ratings, **kwargs)
    with pytest.raises(DataError, match="genres"):
        movielens_problem(ratings.drop(columns="genres"))
