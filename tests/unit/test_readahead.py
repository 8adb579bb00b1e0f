"""The read-ahead planner (mountfs/readahead.py): pure, so no servers, threads or files."""

from __future__ import annotations

from omnifs.mountfs.readahead import Plan, Stream, Window, plan, reserve, stream_reaches, wanted

BS = 1024  # block size
KiB = 1024
SIZE = 64 * BS  # a 64-block file
STREAMING = Stream(streaming=True, done=False, next_index=0)


def read(w: Window, offset: int, size: int = 256, *, limit: int = 8,
         stream: Stream | None = None, file_size: int = SIZE) -> Plan:
    return plan(w, offset, min(offset + size, file_size), block_size=BS, file_size=file_size,
                limit=limit, stream=stream)


def sequential(w: Window, start: int, end: int, step: int = 256, **kw) -> list[Plan]:
    plans = []
    for off in range(start, end, step):
        p = read(w, off, step, **kw)
        w = p.window
        plans.append(p)
    return plans


def test_no_read_ahead_changes_nothing():
    w = Window()
    p = read(w, 0, limit=0)
    assert p == Plan(w)
    p = read(Window(front=BS, last_block=0, blocks=1), 10 * BS, limit=0)
    assert p.window == Window(front=BS, last_block=0, blocks=1) and p.stream_from is None


def test_a_first_read_in_block_0_streams_from_it_at_once():
    p = read(Window(), 0)
    assert p.window == Window(front=256, last_block=0, blocks=1, far=1)
    assert (p.stream_from, p.claim_first, p.stop_stream) == (0, True, False)
    # the kernel's first reads arrive in any order: any offset inside block 0 will do
    p = read(Window(), 512)
    assert (p.stream_from, p.claim_first) == (0, True)


def test_a_first_read_elsewhere_opens_no_window():
    p = read(Window(), 5 * BS)
    assert p.window == Window(front=5 * BS + 256, last_block=5, blocks=0, far=1)
    assert p.stream_from is None and not p.claim_first


def test_a_sequential_read_doubles_the_window_up_to_the_limit():
    w = read(Window(), 0).window
    # streaming: the window stops at the limit; each new block doubles it
    plans = sequential(w, 256, 12 * BS, stream=STREAMING, limit=4)
    sizes = [p.window.blocks for p in plans]
    assert sizes[:4] == [1, 1, 1, 2]  # block 0's reads do not move it, block 1's first does
    assert max(sizes) == 4 and sizes[-1] == 4
    assert all(p.stream_from is None for p in plans)  # the stream runs already
    last = plans[-1].window
    assert (last.front, last.last_block, last.far) == (12 * BS, 11, 0)


def test_the_window_is_twice_the_limit_while_served_from_the_disk_cache():
    w = Window(front=BS, last_block=0, blocks=1)
    done = Stream(streaming=False, done=True, next_index=SIZE // BS)  # went to the end
    plans = sequential(w, BS, 20 * BS, step=BS, stream=done, limit=4)
    assert plans[-1].window.blocks == 8


def test_a_run_without_a_stream_starts_one_after_the_last_block_read():
    w = Window(front=3 * BS, last_block=2, blocks=2)
    p = read(w, 3 * BS)
    assert p.stream_from == 4 and not p.claim_first and p.moved
    # a stream that ended short of the end of the file (failed, idle) is replaced
    p = read(w, 3 * BS, stream=Stream(streaming=False, done=True, next_index=10))
    assert p.stream_from == 4
    # one still running, or stopped but not finished, is not
    assert read(w, 3 * BS, stream=STREAMING).stream_from is None
    assert read(w, 3 * BS, stream=Stream(False, False, 4)).stream_from is None


def test_reads_out_of_order_near_the_front_are_sequential():
    w = Window(front=10 * BS, last_block=9, blocks=4)
    for off in (9 * BS, 13 * BS, 2 * BS + 10 * BS // 2, 11 * BS):
        p = read(w, off, stream=STREAMING)
        assert not p.stop_stream and p.window.far == 0, off
        assert p.window.blocks >= 4
    # behind the front: the front and the last block stay
    p = read(w, 8 * BS, stream=STREAMING)
    assert (p.window.front, p.window.last_block, p.window.blocks) == (10 * BS, 9, 4)


def test_one_far_read_changes_nothing_two_end_the_run():
    w = Window(front=10 * BS, last_block=9, blocks=4)
    p = read(w, 40 * BS, stream=STREAMING)
    assert p.window == Window(front=10 * BS, last_block=9, blocks=4, far=1)
    assert not (p.stop_stream or p.moved) and p.stream_from is None
    # the run goes on where it was: the stray read is forgotten
    back = read(p.window, 10 * BS, stream=STREAMING)
    assert back.window.far == 0 and not back.stop_stream
    # random access: two far in a row close the window and stop the stream
    p2 = read(p.window, 50 * BS, stream=STREAMING)
    assert p2.window == Window(front=50 * BS + 256, last_block=50, blocks=0, far=2)
    assert p2.stop_stream and p2.moved and p2.stream_from is None


def test_backward_reads_far_behind_the_front_are_random():
    w = Window(front=40 * BS, last_block=39, blocks=2)
    p = read(read(w, 5 * BS).window, 4 * BS)
    assert p.stop_stream and p.window.blocks == 0 and p.window.last_block == 4


def test_a_random_reader_that_turns_sequential_gets_a_window_again():
    w = Window(front=50 * BS + 256, last_block=50, blocks=0, far=2)
    p = read(w, 50 * BS + 256)
    assert p.window.blocks == 1 and p.window.far == 0
    assert p.stream_from == 51
    w = p.window
    p = read(w, 51 * BS, stream=STREAMING)
    assert p.window.blocks == 2


def test_the_slack_past_the_front_widens_with_the_window():
    closed = Window(front=10 * BS, last_block=9, blocks=0)
    assert read(closed, 12 * BS).window.far == 0
    assert read(closed, 13 * BS).window.far == 1
    opened = Window(front=10 * BS, last_block=9, blocks=1)
    assert read(opened, 14 * BS).window.far == 0
    assert read(opened, 15 * BS).window.far == 1


def test_no_stream_past_the_end_of_the_file():
    last = SIZE // BS - 1
    w = Window(front=last * BS, last_block=last - 1, blocks=2)
    p = read(w, last * BS)  # reads the last block: nothing after it to stream
    assert p.window.last_block == last and p.stream_from is None
    w = Window(front=(last - 1) * BS, last_block=last - 2, blocks=2)
    assert read(w, (last - 1) * BS).stream_from == last
    # a stream that reached the end handled every block after it
    went = Stream(streaming=False, done=True, next_index=last + 1)
    w = Window(front=20 * BS, last_block=19, blocks=4)
    assert read(w, 20 * BS, stream=went).stream_from is None


def test_a_read_past_the_end_is_clipped_by_the_caller_and_stays_in_its_last_block():
    small = 3 * BS + 100
    w = read(Window(), 0, file_size=small).window
    p = read(w, 3 * BS, 4 * KiB, file_size=small)
    assert p.window.last_block == 3 and p.window.front == small and p.stream_from is None


def test_what_a_stream_may_fetch():
    w = Window(front=10 * BS, last_block=9, blocks=4)
    assert wanted(w, 13) and not wanted(w, 14)
    assert not wanted(Window(front=BS, last_block=0, blocks=0), 1)
    assert reserve(w, 10, 64) == range(10, 14)
    assert reserve(w, 10, 12) == range(10, 12)  # not past the end of the file
    assert reserve(w, 14, 64) == range(14, 14)
    assert stream_reaches(w, 10, 10) and stream_reaches(w, 10, 15)
    assert not stream_reaches(w, 10, 16) and not stream_reaches(w, 10, 9)
    assert stream_reaches(Window(), 3, 5) and not stream_reaches(Window(), 3, 6)
