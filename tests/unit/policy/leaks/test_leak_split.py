from __future__ import annotations

import base64
import random
import string

import pytest

from agentcage.policy.leaks import Protected, SplitDetector, WindowLimits

from .conftest import ANTHROPIC, GITHUB


@pytest.fixture
def split() -> SplitDetector:
    secrets = [Protected("A", ANTHROPIC, "injected"), Protected("G", GITHUB, "known")]
    return SplitDetector(secrets, WindowLimits(max_age=60, max_pieces=64))


def _chunks(value: bytes, size: int) -> list[bytes]:
    return [value[i : i + size] for i in range(0, len(value), size)]


def test_a_secret_sent_eight_characters_at_a_time_is_caught(split: SplitDetector) -> None:
    results = [
        split.observe("evil.com", [piece], now=float(i))
        for i, piece in enumerate(_chunks(GITHUB, 8))
    ]
    assert not any(results[:3])
    assert results[-1] and results[-1][0].secret.name == "G"
    assert results[-1][0].technique == "split:raw"


def test_pieces_of_an_encoded_secret_are_caught(split: SplitDetector) -> None:
    encoded = base64.b64encode(b"xx" + ANTHROPIC)
    hits = [split.observe("evil.com", [p], now=0.0) for p in _chunks(encoded, 10)]
    assert any(hits)


def test_pieces_spread_over_several_domains_complete_in_the_cage_window(
    split: SplitDetector,
) -> None:
    results = [
        split.observe(f"host{i % 3}.example", [piece], now=0.0)
        for i, piece in enumerate(_chunks(GITHUB, 8))
    ]
    assert not any(results[:3])
    assert results[-1] and results[-1][0].secret.name == "G"


def test_pieces_sent_where_the_value_may_go_do_not_count_in_the_cage_window() -> None:
    split = SplitDetector([Protected("G", GITHUB, "known", allowed_hosts=("github.com",))])
    pieces = _chunks(GITHUB, 8)
    for piece in pieces[:3]:
        assert split.observe("github.com", [piece], now=0.0, host="api.github.com") == []
    for piece in pieces[3:]:
        assert split.observe("other.example", [piece], now=0.0) == []


def test_plain_words_do_not_count_in_the_cage_window() -> None:
    password = b"ember-quartz-violet-maple"
    split = SplitDetector([Protected("P", password, "known")])
    for n, word in enumerate([b"ember", b"quartz", b"violet", b"maple"]):
        assert split.observe(f"site{n}.example", [word], now=0.0) == []


def test_a_completed_value_is_forgotten_by_the_cage_window(split: SplitDetector) -> None:
    pieces = _chunks(GITHUB, 8)
    for i, piece in enumerate(pieces):
        split.observe(f"host{i % 3}.example", [piece], now=0.0)
    assert split.observe("late.example", [pieces[0]], now=1.0) == []


def test_pieces_older_than_the_window_are_forgotten(split: SplitDetector) -> None:
    for i, piece in enumerate(_chunks(GITHUB, 8)):
        assert split.observe("evil.com", [piece], now=i * 100.0) == []


def test_the_window_holds_a_bounded_number_of_pieces() -> None:
    split = SplitDetector([Protected("G", GITHUB, "known")], WindowLimits(max_pieces=2))
    for piece in _chunks(GITHUB, 8):
        assert split.observe("evil.com", [piece], now=0.0) == []


def test_the_number_of_destinations_is_bounded() -> None:
    words = b"orbitmapleemberquartzvioletstaplehorse!!"  # pieces of words: no cage window
    split = SplitDetector([Protected("W", words, "known")], WindowLimits(max_destinations=2))
    pieces = _chunks(words, 8)
    split.observe("a.com", pieces[:2], now=0.0)
    split.observe("b.com", pieces[4:], now=0.0)
    split.observe("c.com", pieces[:1], now=0.0)  # evicts a.com
    assert split.observe("a.com", pieces[2:], now=0.0) == []


def test_short_and_unrelated_pieces_are_ignored(split: SplitDetector) -> None:
    noise = [b"ghp_", b"v1", b"messages", b"application", b"json", b"2024-01-01", b"true"]
    for i in range(200):
        assert split.observe("api.example.com", noise, now=float(i)) == []


def test_a_short_value_whose_last_piece_is_too_short_to_record_is_still_caught() -> None:
    password = b"ember-quartz-ember38!"  # canonical: 18 characters
    split = SplitDetector([Protected("P", password, "known")], WindowLimits(min_piece=6))
    pieces = _chunks(password, 8)  # the last, "er38!", is under min_piece
    results = [split.observe("evil.com", [p], now=0.0) for p in pieces]
    assert results[1] and results[1][0].secret.name == "P"


def test_a_password_of_words_in_five_character_pieces_over_three_domains_is_caught() -> None:
    password = b"ember-quartz-ember38!"
    split = SplitDetector([Protected("P", password, "known")])
    pieces = _chunks(password, 5)  # ember, -quar, tz-em, ber38, !
    results = [split.observe(f"site{n % 3}.example", [p], now=0.0) for n, p in enumerate(pieces)]
    assert not any(results[:3])
    assert results[3] and results[3][0].secret.name == "P"


def test_words_count_in_the_cage_window_only_beside_half_the_value_in_other_pieces() -> None:
    password = b"ember-quartz-ember38!"
    split = SplitDetector([Protected("P", password, "known")])
    # Words and one non-word piece: 5 of 18 characters are not words, too few.
    for n, piece in enumerate([b"ember", b"quartz", b"ember", b"er38"]):
        assert split.observe(f"site{n}.example", [piece], now=0.0) == []


def _requests(pieces: list[bytes]) -> list[list[bytes]]:
    """What `?i=N&d=PIECE` to /c gives the detector: path, keys, counter, piece."""
    return [[b"c", b"i", str(n).encode(), b"d", p] for n, p in enumerate(pieces)]


@pytest.mark.parametrize("value", [GITHUB, b"ember-quartz-ember38!"], ids=["token", "password"])
def test_three_character_pieces_to_one_site_are_caught_in_order(value: bytes) -> None:
    split = SplitDetector([Protected("V", value, "known")])
    results = [split.observe("evil.com", r, now=0.0) for r in _requests(_chunks(value, 3))]
    caught = [n for n, r in enumerate(results) if r]
    assert caught and caught[0] < len(results) - 1  # before the last piece left
    assert results[caught[0]][0].technique.startswith("chain:")


@pytest.mark.parametrize(
    "value", [GITHUB, ANTHROPIC, b"ember-quartz-ember38!"], ids=["token", "dashed", "password"]
)
def test_two_character_pieces_to_one_site_are_caught_in_order(value: bytes) -> None:
    # `-a` of `sk-ant` is one canonical character: the loose spelling keeps it two.
    split = SplitDetector([Protected("V", value, "known")])
    results = [split.observe("evil.com", r, now=0.0) for r in _requests(_chunks(value, 2))]
    caught = [n for n, r in enumerate(results) if r]
    assert caught and caught[0] < len(results) - 1
    assert results[caught[0]][0].technique == "chain:raw"


@pytest.mark.parametrize("size", [2, 3])
def test_short_pieces_round_robin_over_several_sites_are_chained_for_the_cage(size: int) -> None:
    split = SplitDetector([Protected("G", GITHUB, "known")])
    results = [
        split.observe(f"site{n % 3}.example", r, now=0.0)
        for n, r in enumerate(_requests(_chunks(GITHUB, size)))
    ]
    caught = [n for n, r in enumerate(results) if r]
    assert caught and caught[0] < len(results) - 1


def test_short_pieces_sent_where_the_value_may_go_grow_no_cage_chain() -> None:
    split = SplitDetector([Protected("G", GITHUB, "known", allowed_hosts=("github.com",))])
    for n, request in enumerate(_requests(_chunks(GITHUB, 3))):
        host = "api.github.com" if n % 2 else "other.example"
        assert split.observe(host.partition(".")[2] or host, request, 0.0, host=host) == []


def test_shuffled_short_pieces_are_not_chained() -> None:
    split = SplitDetector([Protected("G", GITHUB, "known")])
    pieces = _chunks(GITHUB, 3)
    shuffled = pieces[1::2] + pieces[0::2]
    for request in _requests(shuffled):
        assert split.observe("evil.com", request, now=1.0) == []


def test_ordinary_short_values_grow_no_chain(split: SplitDetector) -> None:
    noise = [b"usd", b"eur", b"en", b"get", b"v2", b"ok", b"abc", b"1.0", b"api", b"gh"]
    for i in range(300):
        request = [noise[i % len(noise)], noise[(i * 7) % len(noise)], str(i).encode()]
        assert split.observe("api.example.com", request, now=float(i)) == []


def test_chains_are_bounded_per_destination() -> None:
    split = SplitDetector([Protected("G", GITHUB, "known")], WindowLimits(max_chains=2))
    pieces = _chunks(GITHUB, 3)
    for n, request in enumerate(_requests(pieces)):
        # Each time, new chains start at three places of the value: the real one is
        # among the oldest and is dropped.
        decoys = [GITHUB[6:9], GITHUB[12:15], GITHUB[20:23]]
        assert split.observe("evil.com", [*request, *decoys], now=float(n)) == []


def test_the_pieces_after_a_chain_was_caught_are_caught_too() -> None:
    # The repeated word: the blocked piece equals one that left, so only refusing
    # the tail keeps the whole value from the far side.
    password = b"violet-horse-horse72!"
    split = SplitDetector([Protected("P", password, "known")])
    results = [split.observe("evil.com", r, now=0.0) for r in _requests(_chunks(password, 3))]
    assert [bool(r) for r in results] == [False] * 5 + [True, True]


@pytest.mark.parametrize("sites", [1, 50], ids=["one-site", "many-sites"])
@pytest.mark.parametrize(
    "alphabet",
    [string.ascii_lowercase + string.digits, string.ascii_lowercase + string.digits + "-_./"],
    ids=["alnum", "separators"],
)
def test_random_short_values_grow_no_chain_to_completion(alphabet: str, sites: int) -> None:
    # Counters, flags, short ids. Grown by one-character pieces with no limit on the
    # wait between them, chains completed a value by chance in 729 of these requests.
    # Two-character pieces now start chains in the loose spellings, and the cage's
    # chains take every site's pieces.
    rng = random.Random(5)
    values = [GITHUB, ANTHROPIC, b"ember-quartz-ember38!"]
    split = SplitDetector([Protected(f"V{n}", v, "known") for n, v in enumerate(values)])
    for i in range(20000):
        sizes = [rng.choice([1, 2, 2, 3]) for _ in range(6)]
        request = ["".join(rng.choices(alphabet, k=n)).encode() for n in sizes]
        site = f"site{rng.randrange(sites)}.example"
        assert split.observe(site, request, now=i / 100) == []


def test_a_chain_that_stops_growing_is_dropped() -> None:
    split = SplitDetector([Protected("G", GITHUB, "known")])
    for n, request in enumerate(_requests(_chunks(GITHUB, 3))):
        for _ in range(7):  # seven other messages to the site between pieces
            split.observe("evil.com", [b"status", b"ok"], now=float(n))
        assert split.observe("evil.com", request, now=float(n)) == []


def test_each_piece_is_canonicalised_once_and_still_caught(
    split: SplitDetector, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `observe` folds each piece once and hands the folded form on; a second fold per
    # piece was a twentieth of a small request's time.
    from agentcage.policy.leaks import split as module

    folded: list[bytes] = []
    fold = module.canonical

    def counting(data: bytes) -> bytes:
        folded.append(data)
        return fold(data)

    monkeypatch.setattr(module, "canonical", counting)
    pieces = [p.upper() for p in _chunks(GITHUB, 8)]  # folded to match
    results = [split.observe("evil.com", [piece], now=float(i)) for i, piece in enumerate(pieces)]
    assert results[-1] and results[-1][0].secret.name == "G"
    assert sorted(folded) == sorted(pieces)
