"""Channel estimators: what maps noisy pilots to the channel on every subcarrier.

- :mod:`.baselines`: LS + linear interpolation, statistical LMMSE, the genie LMMSE;
- :mod:`.model`: the v4 transformer estimator (:class:`~.model.ChannelEstimator`) and
  :mod:`.delay_prior`, its learned per-sample delay profile;
- :mod:`.lora`: LoRA adapters through ``peft`` (:func:`~.lora.load_adapter`);
- :mod:`.checkpoint`: safetensors + JSON config, loaded strictly (:func:`~.checkpoint.load_estimator`);
- :mod:`.inspect_adapter`: ``python -m chanest.estimators.inspect_adapter models/lora/<T>``.
"""
