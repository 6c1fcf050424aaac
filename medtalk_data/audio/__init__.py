"""The audio stage: a clip's 16 kHz mono WAV (stage)."""
