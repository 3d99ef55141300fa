"""Privacy audits of a synthetic cohort: membership inference, nearest-neighbour and kinship
leakage, attribute inference and a one-run canary lower bound on epsilon.

``run_audits(real, split, synthetic, AuditConfig(...), train_fn=None).to_dict()`` is the
``audit`` object of the results document (docs/architecture.md).
"""

from dpgenome.audit.config import AuditConfig
from dpgenome.audit.suite import NOT_RUN, AuditReport, TrainFn, run_audits

__all__ = ["NOT_RUN", "AuditConfig", "AuditReport", "TrainFn", "run_audits"]
