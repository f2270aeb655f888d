"""Training: the loop (:mod:`.train`), adapting the base to a target (:mod:`.adapt`: target-data
budget, LoRA, full fine-tuning, scratch), data-parallel processes (:mod:`.distributed`) and
dvclive logging (:mod:`.live`)."""
