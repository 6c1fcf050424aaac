"""The flame backend of the face stage: the user's FLAME model read safely (model_file, safe_pickle),
its landmark embedding (embedding), FLAME in torch (layer) and the per-clip fit (fitter, settings)."""
