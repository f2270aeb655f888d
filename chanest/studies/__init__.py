"""Studies beyond the default pipeline, each with its own ``dvc.yaml``:

- the adaptation frontier (``frontier/``): :mod:`.frontier` (cells), :mod:`.frontier_table`;
- link level (``link/``): :mod:`.link` (Sionna's PUSCH with chanest estimators), :mod:`.link_run`
  (curves in worker processes), :mod:`.bler` (10% BLER crossings), :mod:`.link_report`;
- operating points (``research/``): :mod:`.points`.
"""
