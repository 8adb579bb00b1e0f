"""Who runs: a daemon's record in the catalog against the processes of this host."""

from __future__ import annotations

import json
import os
import subprocess
import time

from omnifs.processes import alive, recorded_alive, this_process


def test_a_record_of_this_host_is_judged_by_its_pid():
    assert recorded_alive(this_process(), heard_lately=False)
    gone = subprocess.Popen(["true"])
    gone.wait()
    record = json.dumps({"pid": gone.pid, "host": json.loads(this_process())["host"]})
    assert not alive(gone.pid)
    assert not recorded_alive(record, heard_lately=True)


def test_clean_stop_other_host_and_no_record():
    assert not recorded_alive("", heard_lately=True)  # stopped cleanly
    other = json.dumps({"pid": os.getpid(), "host": "some-other-host"})
    assert recorded_alive(other, heard_lately=True)
    assert not recorded_alive(other, heard_lately=False)
    assert recorded_alive(None, heard_lately=True) and not recorded_alive(None, heard_lately=False)
    assert recorded_alive("not json", heard_lately=True)


def test_a_zombie_is_not_alive():
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 5
    while alive(child.pid) and time.monotonic() < deadline:  # exited, not yet reaped
        time.sleep(0.01)
    assert not alive(child.pid)
    child.wait()
