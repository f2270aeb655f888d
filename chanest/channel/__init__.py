"""The channel: where power-delay profiles come from, and how OFDM channels are synthesised from them.

- :mod:`.pdp`: the PDP types (:class:`~.pdp.PDP`, :class:`~.pdp.PDPSet`) and the research ``.mat``
  format (:func:`~.pdp.read_mat`);
- :mod:`.sites`: scenarios by name, each with its PDP source (TR 38.901 through Sionna, or a file);
- :mod:`.tr38901`: per-link PDPs from Sionna's TR 38.901 models;
- :mod:`.preprocess`: validation, normalisation and the split by PDP;
- :mod:`.ofdm`: the numerology and the DMRS pilot pattern (:class:`~.ofdm.OFDMConfig`);
- :mod:`.response`: exact tap sums on the subcarrier grid (the kernels);
- :mod:`.sampler`: batched channel realisations with noisy pilots
  (:class:`~.sampler.ChannelSampler` -> :class:`~.sampler.ChannelBatch`) and :func:`~.sampler.nmse`;
- :mod:`.reference`: synthetic PDP sets and the per-sample reference synthesis (tests, benchmark);
- :mod:`.data`: the stages' samplers and fixed validation sets from processed PDPs.
"""
