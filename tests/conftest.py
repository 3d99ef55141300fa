"""Suite-wide settings."""

import os

# DP noise is drawn from fresh OS entropy by default (dpgenome.synthesize.NOISE_SEED_ENV);
# the suite derives it from each configuration's seed, so that its runs are reproducible
# (tests that need the default unset it)
os.environ.setdefault("DPGENOME_NOISE_SEED", "seed")
