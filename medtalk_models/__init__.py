"""medtalk_models: the MEDTalk model stack (arXiv 2507.06071), rig-agnostic, CPU and GPU.

Reads manifests through :mod:`medtalk_data`'s schema. Entry points: :func:`medtalk_models.train.train`,
:class:`medtalk_models.animate.Animator`, :func:`medtalk_models.evaluate.evaluate`; the
``medtalk-models`` command line is a thin adapter over them.
"""

__version__ = "0.1.0"
