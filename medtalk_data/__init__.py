"""medtalk_data: talking-face videos → per-clip 3D face data, audio, words and labels → portable manifests.

One room per job. ``extract/`` runs the stages over a folder (discovery, each clip's folder and
status, one clip through every stage, the worker pool). Each stage has its package: ``face/``
(fitter interface and backends, tracking, head pose, the constant-fps grid, the frames file, the
stage), ``audio/``, ``words/``, ``expression/`` (the labels stage, run inside the face stage's frame
loop). ``manifest/`` gathers extracted clips into a self-contained Parquet manifest, the one thing
``medtalk_models`` reads; ``inspect/`` draws previews and the HTML report; ``io/`` holds media
decoding, WAV reading, Arrow and file helpers. Settings, assets, rig tables and emotion names sit
at the top.

The public entry point for scripts is :func:`medtalk_data.extract.extract_videos`; the
``medtalk-data`` command line is a thin adapter over it.
"""

__version__ = "0.1.0"
