"""The per-user rate limiter, on a fake clock."""

from __future__ import annotations

from bot.telegram.state import UserRateLimiter


def test_user_rate_limiter_window_and_single_notice() -> None:
    limiter = UserRateLimiter(3, window=60)
    assert [limiter.check(1, now=t)[0] for t in (0, 1, 2)] == [True, True, True]
    assert limiter.check(1, now=3) == (False, True)  # notice once
    assert limiter.check(1, now=4) == (False, False)
    assert limiter.check(2, now=4) == (True, False)  # other users unaffected
    assert limiter.check(1, now=60.5)[0] is True  # the first request left the window
