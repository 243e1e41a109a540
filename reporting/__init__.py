"""Reports: efficiency (the paper's Table 5, throughput, MRL curves), regression tests, cross-lingual alignment."""
