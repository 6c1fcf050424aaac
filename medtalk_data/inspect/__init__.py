"""Looking at data before training: per-clip previews (preview) and the HTML report of a manifest (report)."""
