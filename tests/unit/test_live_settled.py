"""How far a log has been read (live.hub.Settled): a low-water mark that waits for an id drawn
before one already read (PostgreSQL draws ids at insert, not at commit), and gives it up after
GAP_SECONDS (its transaction rolled back). The clock is a parameter."""

from __future__ import annotations

from ops_portal.live.hub import GAP_SECONDS, Settled


def test_the_mark_follows_ids_read_in_order():
    settled = Settled(9)
    settled.settle([10, 11], now=0.0)
    assert (settled.low, settled.above, settled.missing) == (11, set(), {})
    assert not settled.is_new(11) and settled.is_new(12)


def test_an_id_committed_late_holds_the_mark_until_it_is_read():
    settled = Settled(9)
    settled.settle([11, 12], now=0.0)  # 10 is still to commit
    assert settled.low == 9 and settled.missing == {10: 0.0}
    assert not settled.is_new(11) and settled.is_new(10)
    settled.settle([10], now=1.0)
    assert (settled.low, settled.above, settled.missing) == (12, set(), {})


def test_an_id_that_never_comes_is_given_up_after_the_gap_time():
    settled = Settled(0)
    settled.settle([2], now=0.0)
    settled.settle([], now=GAP_SECONDS)
    assert settled.low == 0
    settled.settle([3], now=GAP_SECONDS + 0.1)
    assert (settled.low, settled.missing) == (3, {})
