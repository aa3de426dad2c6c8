import os

import numpy as np
import pytest
from hypothesis import settings

# Shared 2-core machines: no per-example deadline; failures print the blob
# that reproduces them.
settings.register_profile("fastact", deadline=None, print_blob=True, max_examples=150)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fastact"))


@pytest.fixture
def rng(request):
    """A fresh random generator per test; its seed is printed, so a failure
    shows it (re-run with FASTACT_TEST_SEED=<seed>)."""
    seed = int(os.environ.get("FASTACT_TEST_SEED", np.random.SeedSequence().entropy % (1 << 63)))
    print(f"{request.node.nodeid}: FASTACT_TEST_SEED={seed}")
    return np.random.default_rng(seed)

