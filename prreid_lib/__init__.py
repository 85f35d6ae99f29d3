"""prreid_lib: the thin library behind the prreid book.

It reproduces *Part-regularized Near-duplicate Vehicle Re-identification*
(He, Li, Zhao, Tian; CVPR 2019): SynthVeh data and real-data loaders, part
annotation and detection, the part-regularized model and loss, training,
re-id metrics and the paper's protocols.
"""

__version__ = "0.1.0"
