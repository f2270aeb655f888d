"""Evaluation: fixed per-scenario test sets and NMSE of every method (:mod:`.evaluate`),
PDP-bootstrap intervals (:mod:`.stats`) and the figures (:mod:`.plots`)."""
