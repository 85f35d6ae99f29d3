"""prreid_lib: the thin library behind the prreid book.

It reproduces *Part-regularized Near-duplicate Vehicle Re-identification*
(He, Li, Zhao, Tian; CVPR 2019): SynthVeh data and real-data loaders, part
annotation and detection, the part-regularized model and loss, training,
re-id metrics and the paper's protocols.
"""

import os

__version__ = "0.1.0"

# OpenMP threads that wait for work sleep at once instead of spinning. When other jobs share
# the cores, spinning threads burn the time slices their own stragglers need: the part
# detector's training ran 2.4 times slower with spinning beside two busy single-thread jobs
# (benchmarks/results/load_slowdown.md). Read when torch loads its OpenMP runtime, so it
# holds in every process that imports prreid_lib before torch (the CLI, the chapters).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
