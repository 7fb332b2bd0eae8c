"""A real Dask cluster of this machine for the distributed tests: two worker processes, one thread each."""

import os
import signal
import time

import pytest


def _needs(module: str):
    """``module`` imported; a failure in CI (where the test extra installs it), a skip elsewhere."""
    try:
        return __import__(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is missing: install the test extra (pip install '.[test]')")
        pytest.skip(f"{module} is not installed (pip install 'pyface[dask]')")


def start_cluster(n_workers: int = 2):
    """A LocalCluster of ``n_workers`` single-threaded worker processes on loopback, and its client."""
    distributed = _needs("distributed")
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    return cluster, distributed.Client(cluster)


@pytest.fixture(scope="module")
def client():
    """A client of a two-worker cluster shared by the tests of a module (which must not kill its workers)."""
    cluster, client = start_cluster(2)
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def own_client():
    """A client of a two-worker cluster of the test's own, whose workers it may kill."""
    cluster, client = start_cluster(2)
    yield client
    client.close()
    cluster.close()


def kill_a_worker_once_busy(client, *, timeout: float = 120.0) -> dict:
    """Wait until a worker has a task running, then kill its process (SIGKILL); returns what was done.

    The result's ``pid`` is the killed process and ``killed`` whether it happened within ``timeout``.
    """
    pids = client.run(os.getpid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [address for address, keys in client.processing().items() if keys and address in pids]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            return {"killed": True, "pid": pids[busy[0]], "address": busy[0]}
        time.sleep(0.005)
    return {"killed": False}
