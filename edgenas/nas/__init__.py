"""Few-shot search: benchmark tables (`benchmark`), what conditions the models (`conditioning`), the latency and
task predictors (`predictor`), the architecture generator (`generator`), their checkpoint (`checkpoint`) and
meta-training (`metatrain`), and the search for a budget that spends device measurements (`search`)."""
