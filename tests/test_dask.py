"""fastact on a Dask distributed cluster of worker processes (loopback):
prelu and prelu_backward mapped over the chunks of a 64 MiB array generated
on the workers, each chunk checked against the oracle there
(tools/dask_demo.py, which runs the same at 2 GiB).  Skipped where
distributed is not installed (``pip install "dask[distributed]"``)."""
import importlib.util
import pathlib
import sys

import pytest

TOOL = pathlib.Path(__file__).resolve().parent.parent / "tools" / "dask_demo.py"


@pytest.mark.slow
def test_dask_cluster_maps_prelu_over_chunks():
    pytest.importorskip("distributed")
    cloudpickle = pytest.importorskip("cloudpickle")
    spec = importlib.util.spec_from_file_location("fastact_dask_demo", TOOL)
    demo = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = demo
    spec.loader.exec_module(demo)
    # the workers cannot import this module by name: its functions travel by value
    cloudpickle.register_pickle_by_value(demo)
    cluster, client = demo.cluster("1GiB")
    try:
        f = demo.run(client, gib=1 / 16, chunk_mib=4, seed=7)
    finally:
        client.close()
        cluster.close()
        cloudpickle.unregister_pickle_by_value(demo)
        del sys.modules[spec.name]
    assert f["chunks"] == 16 and f["gib"] == 1 / 16
    assert f["y_wrong"] == 0 and f["gi_wrong"] == 0
    assert f["grad_slopes_rel_err"] < 1e-6
