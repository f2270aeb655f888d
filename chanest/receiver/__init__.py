"""chanest inside a Sionna receiver, and the link at the research's FR2 numerology.

- :class:`ChanestEstimator`: any chanest estimator as a Sionna channel estimator (estimate and a
  calibrated error variance per resource element), e.g. ``PUSCHReceiver(channel_estimator=...)``.
- :mod:`chanest.receiver.grid_link`: block error rate on a Sionna OFDM resource grid with an
  arbitrary pilot comb (the research's pilot every 6th subcarrier, which Sionna's PUSCH DMRS
  cannot carry), LDPC transport blocks up to 64-QAM (``research-link/dvc.yaml``).
"""

from chanest.receiver.estimator import ChanestEstimator, ErrorVariance, calibrate, pilot_comb

__all__ = ["ChanestEstimator", "ErrorVariance", "calibrate", "pilot_comb"]
