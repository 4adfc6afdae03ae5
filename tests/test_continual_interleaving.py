"""continual.interleaving: team-draft's defining properties over many random rankings (each pick is the picking
ranker's best unused item, so each team keeps its ranker's order; teams differ by at most one in every prefix; no
duplicates), the vectorized version equal to the scalar one under the same coins, identical rankers (and clicks that
ignore the items) tying in expectation, the better ranker winning, the click model's rates, the users-needed estimate
confirmed by direct simulation, sessions summed per user, and bad input (empty lists, repeated items, k <= 0)
refused with errors that name the problem."""
import math

import numpy as np
import pytest
from scipy import stats

from mlsys.continual import interleaving as I
from mlsys.core import ConfigError, DataError


def _random_lists(rng, universe=30):
    la, lb = rng.integers(1, 21, 2)
    return list(rng.permutation(universe)[:la]), list(rng.permutation(universe)[:lb])


def test_team_draft_properties_over_many_random_rankings():
    rng = np.random.default_rng(0)
    for case in range(1500):
        a, b = _random_lists(rng)
        k = None if case % 5 == 0 else int(rng.integers(1, 25))
        r = I.team_draft(a, b, k=k, rng=case)
        items, teams = r.items, r.teams
        assert len(set(items)) == len(items)  # no duplicates
        assert set(items) <= set(a) | set(b)
        if k is not None:
            assert len(items) <= k
            if k <= min(len(a), len(b)):
                assert len(items) == k  # neither ranker can run out before k
        lists = (a, b)
        for i, (item, t) in enumerate(zip(items, teams)):  # each pick: the picking ranker's best unused item
            assert item == next(x for x in lists[t] if x not in items[:i])
        for t in (0, 1):  # so each team's items appear in its ranker's order
            picks = r.team_items(t)
            assert picks == sorted(picks, key=lists[t].index)
        diff = np.cumsum(teams == 0) - np.cumsum(teams == 1)
        assert np.all(np.abs(diff) <= 1)  # in every prefix
        assert np.all(diff[1::2] == 0)  # every round gives each team one item
        # it stops only at k or when a ranker has nothing new left
        if k is None or len(items) < k:
            assert set(a) <= set(items) or set(b) <= set(items)


def test_coins_decide_who_picks_first_in_each_round():
    a, b = ["a1", "a2", "a3"], ["b1", "b2", "b3"]
    assert I.team_draft(a, b, coins=[1, 1, 1]).items == ["a1", "b1", "a2", "b2", "a3", "b3"]
    assert I.team_draft(a, b, coins=[0, 1, 0]).items == ["b1", "a1", "a2", "b2", "b3", "a3"]
    first = np.array([I.team_draft(a, b, rng=s).teams[0] for s in range(4000)])
    assert abs(first.mean() - 0.5) < 3.5 * math.sqrt(0.25 / 4000)  # a fair coin
    same = I.team_draft(a, a, coins=[1, 0, 1])
    assert same.items == a and list(same.teams) == [0, 1, 1]  # identical rankers: who gets what is the coins'
    assert I.team_draft(["a1"], b, coins=[1, 1]).items == ["a1", "b1"]  # A has nothing left at its turn: stop
    assert I.team_draft(["a1"], b, coins=[0, 0]).items == ["b1", "a1", "b2"]


def test_many_equals_the_scalar_version_under_the_same_coins():
    rng = np.random.default_rng(1)
    n, L, k = 300, 12, 9
    A = np.array([rng.permutation(25)[:L] for _ in range(n)])
    B = np.array([rng.permutation(25)[:L] for _ in range(n)])
    B[::3] = A[::3]  # some identical rankers
    for i in range(1, n, 3):  # some sharing a top four
        B[i] = np.r_[A[i, :4], [x for x in rng.permutation(25) if x not in A[i, :4]][:L - 4]]
    coins = rng.random((n, (k + 1) // 2)) < 0.5
    lists, teams = I.team_draft_many(A, B, k, coins=coins)
    for i in range(n):
        r = I.team_draft(list(A[i]), list(B[i]), k=k, coins=coins[i])
        assert list(lists[i]) == r.items and list(teams[i]) == list(r.teams)


def _relevance(rng, n_users=60, n_items=80):
    return rng.beta(0.6, 1.6, (n_users, n_items))


def test_identical_rankers_and_item_blind_clicks_tie_in_expectation():
    rng = np.random.default_rng(2)
    rel = _relevance(rng)
    A = I.noisy_oracle(rel, 1.0, 15, seed=1)
    users = rng.integers(0, len(rel), 60_000)
    same = I.interleaved_users(rel, A, A, users, k=10, rng=3)
    assert abs(same.mean()) < 4 * same.std() / math.sqrt(len(same))
    # tie across seeds too: the mean of 200 small experiments' means
    means = [I.interleaved_users(rel, A, A, users[:300], k=10, rng=s).mean() for s in range(200)]
    assert abs(np.mean(means)) < 4 * np.std(means) / math.sqrt(200)
    # clicks that depend only on the position (relevance the same for every item): no preference, even for different rankers
    B = I.noisy_oracle(rel, 3.0, 15, seed=2)
    flat = np.full_like(rel, 0.4)
    blind = I.interleaved_users(flat, A, B, users, k=10, rng=4)
    assert abs(blind.mean()) < 4 * blind.std() / math.sqrt(len(blind))


def test_the_better_ranker_wins_both_experiments():
    rng = np.random.default_rng(3)
    rel = _relevance(rng)
    good, bad = I.noisy_oracle(rel, 0.5, 15, seed=1), I.noisy_oracle(rel, 2.5, 15, seed=2)
    assert I.expected_clicks(rel, good, 10).mean() > I.expected_clicks(rel, bad, 10).mean()
    s = I.sensitivity(rel, good, bad, n=20_000, k=10, seed=5)
    assert s["il_score"] > 0 and s["il_wins_A"] > s["il_wins_B"] and s["ab_clicks_A"] > s["ab_clicks_B"]
    assert 0 < s["il_users"] < math.inf and 0 < s["ab_users"] < math.inf
    flipped = I.sensitivity(rel, bad, good, n=20_000, k=10, seed=5)
    assert flipped["il_score"] < 0


def test_users_needed_gives_the_planned_power_in_direct_simulation():
    rng = np.random.default_rng(4)
    rel = _relevance(rng)
    A, B = I.noisy_oracle(rel, 1.0, 15, seed=1), I.noisy_oracle(rel, 1.6, 15, seed=2)
    s = I.sensitivity(rel, A, B, n=50_000, k=10, seed=6)
    n = math.ceil(s["il_users"])
    hits = 0
    for e in range(300):
        score = I.interleaved_users(rel, A, B, rng.integers(0, len(rel), n), k=10, rng=1000 + e)
        t = stats.ttest_1samp(score, 0.0)
        hits += (t.pvalue < 0.05) and t.statistic > 0
    assert abs(hits / 300 - 0.8) < 3.5 * math.sqrt(0.16 / 300)
    assert I.users_needed(0.0, 1.0) == math.inf
    assert I.users_needed(0.1, 1.0) == pytest.approx((stats.norm.isf(0.025) + stats.norm.ppf(0.8)) ** 2 / 0.01)


def test_click_model_rates_and_sessions():
    rng = np.random.default_rng(5)
    rel = np.full((200_000, 4), 0.5)
    clicks = I.pbm_clicks(rel, eta=1.0, rng=rng)
    expected = 0.5 / np.arange(1, 5)
    assert np.all(np.abs(clicks.mean(0) - expected) < 4 * np.sqrt(expected * (1 - expected) / len(rel)))
    ones = np.ones((5, 12))
    A = np.tile(np.arange(12), (5, 1))
    sessions = np.array([1, 2, 3, 4, 5])
    arm, c = I.ab_users(ones, A, A[:, ::-1], np.array([0, 4, 4, 2]), k=3, eta=0.0, rng=0, sessions=sessions)
    np.testing.assert_array_equal(c, 3 * sessions[[0, 4, 4, 2]])  # every view: every item examined and clicked
    score = I.interleaved_users(ones, A, A[:, ::-1], np.array([1, 3]), k=4, eta=0.0, rng=0, sessions=sessions)
    np.testing.assert_array_equal(score, [0, 0])  # both teams get 2 clicks in every view
    np.testing.assert_array_equal(I.noisy_oracle(rel[:3, :4] + np.arange(4) * 0.1, 0.0, 2), [[3, 2]] * 3)


@pytest.mark.parametrize("a, b, k, err, message", [
    ([], [1, 2], 2, DataError, "A's list is empty"),
    ([1, 2], [], 2, DataError, "B's list is empty"),
    ([1, 2, 1], [3], 2, DataError, "A's list repeats item 1"),
    ([1, 2], ["x", "y", "y"], 2, DataError, "B's list repeats item 'y'"),
    ([1, 2], [3, 4], 0, ConfigError, "positive integer"),
    ([1, 2], [3, 4], -3, ConfigError, "positive integer"),
    ([1, 2], [3, 4], 2.5, ConfigError, "positive integer"),
    ([1, 2], [3, 4], True, ConfigError, "positive integer"),
    ("abc", [3, 4], 2, DataError, "sequence of items"),
    (None, [3, 4], 2, DataError, "sequence of items"),
])
def test_team_draft_bad_input(a, b, k, err, message):
    with pytest.raises(err, match=message):
        I.team_draft(a, b, k=k)


def test_team_draft_many_bad_input():
    A = np.tile(np.arange(5), (3, 1))
    with pytest.raises(DataError, match="row 1 repeats item 2"):
        I.team_draft_many(A, np.array([[0, 1, 2, 3, 4], [2, 2, 0, 1, 3], [0, 1, 2, 3, 4]]), 3)
    with pytest.raises(DataError, match="same shape"):
        I.team_draft_many(A, A[:2], 3)
    with pytest.raises(ConfigError, match="longer than"):
        I.team_draft_many(A, A, 6)
    with pytest.raises(ConfigError, match="positive integer"):
        I.team_draft_many(A, A, 0)
    with pytest.raises(DataError, match="non-empty"):
        I.team_draft_many(np.empty((0, 5), int), np.empty((0, 5), int), 3)
    with pytest.raises(DataError, match="integer item ids"):
        I.team_draft_many(A.astype(float), A, 3)
    with pytest.raises(DataError, match="coins"):
        I.team_draft_many(A, A, 3, coins=np.ones((3, 1)))
    with pytest.raises(DataError, match="probabilities"):
        I.pbm_clicks(np.array([[0.5, 1.5]]))
    with pytest.raises(DataError, match="sessions"):
        I.ab_users(np.ones((5, 12)), A, A, np.array([0, 1]), k=3, sessions=np.array([1, 0, 1, 1, 1]))
    with pytest.raises(DataError, match="row indices"):
        I.interleaved_users(np.ones((3, 5)), A, A, np.array([0, 7]), k=3)
    with pytest.raises(ConfigError, match="noise"):
        I.noisy_oracle(np.ones((3, 5)) * 0.5, -1.0, 3)
    with pytest.raises(ConfigError, match="too many"):
        I.sensitivity(np.ones((3, 5)) * 0.5, A, A, n=10**9, k=3)
