"""medtalk_data: talking-face videos → per-clip 3D face data, audio, words and labels.

The public entry point for scripts is :func:`medtalk_data.extract.extract_videos`; the
``medtalk-data`` command line is a thin adapter over it.
"""

__version__ = "0.1.0"
