"""The pure parts of migrate verify and rollback: what is printed, where saved copies live,
and the bounded parallel map both steps run on."""

from __future__ import annotations

import threading
import time

from omnifs.migration.rollback import RollbackResult, Undone
from omnifs.migration.sides import saved_key
from omnifs.migration.verify import LIST_CAP, Check, VerifyResult, bounded_map


def test_verify_lists_problems_up_to_the_cap_then_counts_the_rest():
    r = VerifyResult(recorded=True)
    for i in range(3):
        r.add(Check(f"ok{i}", "ok"))
    for i in range(LIST_CAP + 5):
        r.add(Check(f"bad{i:02}", "mismatch", "SHA-256 differs"))
    r.add(Check("gone", "missing"))
    lines = r.lines()
    assert lines[0] == "MISMATCH bad00: SHA-256 differs"
    assert len(lines) == LIST_CAP + 2
    assert lines[-2] == "... and 6 more"
    assert lines[-1] == f"verified {LIST_CAP + 9} objects: 3 ok, {LIST_CAP + 5} mismatch, " \
                        "1 missing"
    assert r.failed == LIST_CAP + 6


def test_verify_summary_of_an_unrecorded_clean_check():
    r = VerifyResult()
    r.add(Check("a", "ok"))
    assert r.lines() == ["verified 1 object: 1 ok (not recorded: no run of this plan in the "
                         "catalog)"]


def test_rollback_summary_and_failures():
    r = RollbackResult(state="done")
    r.add(Undone("a", "removed"))
    r.add(Undone("b", "restored", source_restored=True))
    r.add(Undone("c", "", error="the saved copy x is gone"))
    assert r.lines() == ["FAILED   c: the saved copy x is gone",
                         "rolled back: 1 new removed, 1 restored from saved copies, 1 sources "
                         "restored, 1 failed; 0 saved copies deleted; migration done"]


def test_saved_copies_live_under_the_migration_id():
    assert saved_key("", "0123abcd0123abcd", "into/a b.txt") == \
        ".omnifs/migrations/0123abcd0123abcd/into/a b.txt"
    # inside the destination tree: a bare file:// destination never writes at /
    assert saved_key("tmp/dst", "0123abcd0123abcd", "a") == \
        "tmp/dst/.omnifs/migrations/0123abcd0123abcd/a"


def test_bounded_map_keeps_order_and_takes_few_ahead():
    taken = []
    running = [0, 0]  # now, most at once
    lock = threading.Lock()

    def items():
        for i in range(40):
            taken.append(i)
            yield i

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.002 * (i % 3))
        with lock:
            running[0] -= 1
        return i * i

    out = []
    for got in bounded_map(work, items(), 3):
        out.append(got)
        # never more than 2 * workers taken beyond what was handed back
        assert len(taken) - len(out) <= 6
    assert out == [i * i for i in range(40)]
    assert running[1] <= 3
