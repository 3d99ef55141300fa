"""dpgenome: differentially private synthetic genomic cohorts, audited and policy-gated."""

__version__ = "0.2.0"
