"""Which backups a retention policy keeps: restic's ``forget`` rules, pure.

``keep_last`` n: the n newest. ``hourly``/``daily``/``weekly``/``monthly`` n:
for each of the n most recent hours (days, ISO weeks, months) that have a
backup, the newest backup in it. A backup any rule keeps is kept; a policy
with no rule keeps everything. Times are UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from .config import Retention

_BUCKETS: dict[str, Callable[[datetime], tuple]] = {
    "hourly": lambda d: (d.year, d.month, d.day, d.hour),
    "daily": lambda d: (d.year, d.month, d.day),
    "weekly": lambda d: d.isocalendar()[:2],
    "monthly": lambda d: (d.year, d.month),
}


def keep(times: Sequence[float], policy: Retention) -> set[int]:
    """Indexes into ``times`` (epoch seconds) of the backups ``policy`` keeps."""
    if policy.keeps_all():
        return set(range(len(times)))
    newest_first = sorted(range(len(times)), key=lambda i: times[i], reverse=True)
    kept = set(newest_first[:policy.keep_last])
    for rule, bucket_of in _BUCKETS.items():
        n = getattr(policy, rule)
        last = None
        for i in newest_first:
            if n <= 0:
                break
            bucket = bucket_of(datetime.fromtimestamp(times[i], UTC))
            if bucket != last:
                kept.add(i)
                last = bucket
                n -= 1
    return kept
