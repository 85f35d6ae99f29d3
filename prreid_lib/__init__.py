"""prreid_lib: the thin library behind the prreid book.

It reproduces *Part-regularized Near-duplicate Vehicle Re-identification*
(He, Li, Zhao, Tian; CVPR 2019): SynthVeh data and real-data loaders, part
annotation and detection, the part-regularized model and loss, training,
re-id metrics and the paper's protocols.
"""

import os

__version__ = "0.1.0"

# OpenMP threads that wait for work spin on idle cores and sleep at once when other jobs take
# half a core or more: spinning is faster alone, and 2.2 times slower beside two busy jobs
# (benchmarks/results/load_slowdown.md). Read when torch loads its OpenMP runtime, so it
# holds in every process that imports prreid_lib before torch (the CLI, the chapters); a
# value the user set is kept. A process that chose it marks the choice as automatic, so each of
# its children (a chapter's kernel, a data-loader) measures the load at its own start again.
if "OMP_WAIT_POLICY" not in os.environ or os.environ.get("PRREID_AUTO_WAIT_POLICY") == "1":
    from prreid_lib.cpu_share import wait_policy_for_machine

    os.environ["OMP_WAIT_POLICY"] = wait_policy_for_machine()
    os.environ["PRREID_AUTO_WAIT_POLICY"] = "1"
