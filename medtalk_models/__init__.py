"""medtalk_models: the MEDTalk model stack (arXiv 2507.06071), rig-agnostic, CPU and GPU.

Reads manifests through :mod:`medtalk_data`'s schema; the model code lands with issue 5.
"""

__version__ = "0.1.0"
