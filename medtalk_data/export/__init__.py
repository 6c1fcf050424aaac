"""Datasets for other training frameworks, written from a manifest (Audio2Face-3D: :mod:`.a2f`)."""
