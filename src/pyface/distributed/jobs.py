"""Running one task per partition on a Dask cluster and taking the results back in input order."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tqdm.auto import tqdm

# Partitions submitted ahead of the oldest unfinished one, per worker thread: enough to keep
# every worker busy, few enough that a job of millions of files neither floods the scheduler
# nor keeps many finished partitions waiting on the driver for an earlier one.
_AHEAD_PER_THREAD = 4


def default_client(client):
    """``client``, or the Dask client made last in this process."""
    if client is not None:
        return client
    from distributed import get_client

    try:
        return get_client()
    except ValueError:
        raise ValueError("no Dask client: pass client=, e.g. distributed.Client() for a local cluster "
                         "or distributed.Client('tcp://scheduler:8786')") from None


def _cluster_threads(client) -> int:
    threads = sum(client.nthreads().values())
    return max(threads, 1)


def run_in_order(client, task: Callable, parts: Sequence[list], args: tuple,
                 deliver: Callable[[int, object], None], *, quiet: bool = False, desc: str = "images") -> None:
    """Run ``task(*args, part)`` for every partition and call ``deliver(k, result)`` for k = 0, 1, ...

    A partition runs again elsewhere when its worker is lost (Dask's own rescheduling),
    and each result is delivered exactly once, in order, so the output holds every file
    once however many workers died. A task raising an exception fails the job.
    """
    from distributed import as_completed

    window = _AHEAD_PER_THREAD * _cluster_threads(client)
    pending: dict = {}
    finished: dict[int, object] = {}
    following = 0  # next partition to deliver

    def submit(k: int):
        # pure=False: a job run twice really runs twice, after the files may have changed.
        future = client.submit(task, *args, parts[k], pure=False)
        pending[future] = k
        return future

    started = [submit(k) for k in range(min(window, len(parts)))]
    submitted = len(started)
    progress = tqdm(total=sum(len(p) for p in parts), desc=desc, unit="image", disable=quiet, leave=False)
    try:
        queue = as_completed(started)
        for future in queue:
            k = pending.pop(future)
            finished[k] = future.result()
            progress.update(len(parts[k]))
            while following in finished:
                deliver(following, finished.pop(following))
                following += 1
            if submitted < len(parts):
                queue.add(submit(submitted))
                submitted += 1
    finally:
        progress.close()
        for future in pending:
            future.cancel()
