"""Read-ahead planning for one open file: pure functions, no I/O, no threads (like ``policy/``).

A handle feeds each read in (its byte range, the file's size, the block size,
the window limit and what its stream is doing) and gets back the new
:class:`Window` and what to do: start a stream at some block, stop the one
running, or nothing. The handle (mountfs/readhandle.py) carries it out; the
streamer (mountfs/streamer.py) asks :func:`wanted` and :func:`reserve` how
far ahead of the reader it may go.

The rules:

* Reads are judged against the *front*, the furthest byte read so far, not
  against the previous read: the kernel has several reads of one file in
  flight and they arrive out of order (here: 10, 14..18, 11..13 MiB, and up
  to 9 MiB past the front), so "starts where the last one ended" would call
  a plain ``cat`` random. A read is *near* when it starts at most
  ``2 * window + 2`` blocks behind the front, or 4 blocks past it (2 while
  the window is closed: the kernel's own read-ahead of a FUSE file runs up
  to ~9 MiB past the furthest read here).
* A first read inside block 0 (``cat``, ``cp``; the kernel's first reads of
  a file arrive in any order, so not only at offset 0) opens a window of one
  block and streams from block 0 at once, if block 0 is neither cached nor
  already on its way (the handle claims it). A random reader that starts
  there costs one block of read-ahead.
* Any other first read, or a second far read in a row, closes the window
  (random access: sqlite, mmap faults) and stops the stream. One far read
  alone changes nothing.
* A near read moves the front; when it reaches a new block (or the window
  is closed), the window doubles, from 1 up to the limit. If no stream runs,
  or the last one ended short of the end of the file, a stream starts at
  the block after the last one read. A stream that went to the end of the
  file handled every block after it: no new one.
* The limit doubles while no stream is open: blocks then come from the disk
  cache as maps of cache files (page cache, not memory of ours), and the
  disk wants many reads in flight (a warm 1 GiB read: 1.26-1.45 s with the
  plain limit, 0.98-1.04 s with twice it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Window:
    """What a handle knows of its reader: the run it is in and how far ahead to read."""

    #: the furthest byte read so far; None before the first read
    front: int | None = None
    #: the furthest block read so far (-1 before the first read)
    last_block: int = -1
    #: blocks read-ahead may go past ``last_block``; 0: closed (random access)
    blocks: int = 0
    #: reads in a row that were far from the front
    far: int = 0


@dataclass(frozen=True)
class Stream:
    """The handle's sequential stream, as far as planning needs it."""

    #: a store stream is open and being read (not stopped, not finished)
    streaming: bool
    #: it ended: reached the end of the file, failed, stopped or went idle
    done: bool
    #: the next block it brings (or would have brought)
    next_index: int


@dataclass(frozen=True)
class Plan:
    """The outcome of one read: the new window and what to do about streams."""

    window: Window
    #: start a stream at this block; None: no new stream
    stream_from: int | None = None
    #: claim ``stream_from`` first; the stream starts only if the claim succeeds
    #: (the block is neither cached nor on its way)
    claim_first: bool = False
    #: stop the handle's stream
    stop_stream: bool = False
    #: the window changed: a stream waiting for its reader to come near looks again
    moved: bool = False


def plan(w: Window, offset: int, end: int, *, block_size: int, file_size: int, limit: int,
         stream: Stream | None) -> Plan:
    """The plan after a read of ``[offset, end)`` (``end`` within the file).

    ``limit``: the most blocks a window may hold, 0 for no read-ahead at
    all (then nothing changes, not even the front). ``stream``: the
    handle's stream, None when it has none.
    """
    if limit <= 0:
        return Plan(w)
    if stream is None or not stream.streaming:
        limit *= 2
    bs = block_size
    last = (end - 1) // bs
    front = w.front
    slack_back = (2 * max(w.blocks, 1) + 2) * bs
    slack_ahead = (4 if w.blocks else 2) * bs
    near = front is not None and front - slack_back <= offset <= front + slack_ahead
    far = 0 if near else w.far + 1
    if front is None and offset < bs:
        return Plan(Window(end, last, 1, far), stream_from=0, claim_first=True)
    if front is None or (not near and far >= 2):
        return Plan(Window(end, last, 0, far), stop_stream=True, moved=True)
    if not near:
        return Plan(replace(w, far=far))
    last_block = max(w.last_block, last)
    blocks = w.blocks
    if last > w.last_block or blocks == 0:
        blocks = min(limit, max(1, blocks * 2))
    nblocks = (file_size + bs - 1) // bs
    start = None
    if ((stream is None or (stream.done and stream.next_index < nblocks))
            and last_block + 1 < nblocks):
        start = last_block + 1
    return Plan(Window(max(front, end), last_block, blocks, far), stream_from=start, moved=True)


def wanted(w: Window, index: int) -> bool:
    """May a stream bring block ``index`` now (is the reader within the window of it)?"""
    return index <= w.last_block + w.blocks


def reserve(w: Window, index: int, nblocks: int) -> range:
    """The blocks from ``index`` a stream may claim without waiting: up to the window's end.

    Claimed blocks make the kernel's reads ahead of the stream wait for it
    instead of each starting a request; never more, or readers of another
    handle would wait on blocks this stream is not fetching yet.
    """
    return range(index, min(nblocks, w.last_block + w.blocks + 1))


def stream_reaches(w: Window, next_index: int, index: int) -> bool:
    """Will a stream at ``next_index`` bring block ``index`` in a moment?

    Only a few blocks short of it at most: a reader far ahead (random
    access) fetches for itself.
    """
    return next_index <= index <= next_index + max(w.blocks, 1) + 1
