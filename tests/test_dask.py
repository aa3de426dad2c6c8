"""fastact on a Dask distributed cluster of worker processes (loopback):
prelu and prelu_backward mapped over the chunks of a 64 MiB array generated
on the workers, each chunk checked against the oracle there
(tools/dask_demo.py, which runs the same at 2 GiB).  Skipped where
distributed is not installed (``pip install "dask[distributed]"``)."""
import pathlib
import sys

import pytest

TOOLS = pathlib.Path(__file__).resolve().parent.parent / "tools"


@pytest.mark.slow
def test_dask_cluster_maps_prelu_over_chunks():
    pytest.importorskip("distributed")
    sys.path.insert(0, str(TOOLS))
    try:
        import dask_demo
    finally:
        sys.path.remove(str(TOOLS))
    cluster, client = dask_demo.cluster("1GiB")
    try:
        # the tasks name dask_demo's functions (pickled by reference): the
        # workers get the module itself, as Dask users ship their own code
        client.upload_file(dask_demo.__file__)
        f = dask_demo.run(client, gib=1 / 16, chunk_mib=4, seed=7, timeout=120)
    finally:
        client.close()
        cluster.close()
    assert f["chunks"] == 16 and f["gib"] == 1 / 16
    assert f["y_wrong"] == 0 and f["gi_wrong"] == 0
    assert f["grad_slopes_rel_err"] < 1e-6
