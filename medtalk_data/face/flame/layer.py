"""FLAME in torch: identity and expression blendshapes, pose correctives, linear blend skinning.

Our own small layer rather than a package: the FLAME layers of FLAME_PyTorch and smplx load the
model with ``pickle.load``, which runs whatever the file names and needs chumpy (unmaintained; it
no longer imports under numpy >= 1.24), and smplx's code is under a non-commercial licence. This
follows the published model (Li et al. 2017, "Learning a model of facial shape and expression from
4D scans"): vertices = LBS(T + B_S(β) + B_E(ψ) + B_P(θ), J(β, ψ), θ, W) with five joints (global, neck, jaw, two eyes).

It can compute only a subset of the vertices (``vertex_ids``): fitting landmarks needs the
corners of a few hundred triangles, not all 5023 vertices, and the joints come from the full mesh
through precomputed regressor products, so the subset is exact.
"""

from __future__ import annotations

import numpy as np
import torch

from .model_file import N_JOINTS, FlameModel

POSE_DIMS = N_JOINTS * 3  # axis-angle per joint: global, neck, jaw, eye, eye


def rodrigues(axis_angle: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle → (..., 3, 3) rotation matrices (stable at zero angle)."""
    angle = torch.sqrt((axis_angle**2).sum(-1, keepdim=True) + 1e-16)
    axis = axis_angle / angle
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*axis.shape[:-1], 3, 3)
    s = torch.sin(angle)[..., None]
    c = torch.cos(angle)[..., None]
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + s * k + (1 - c) * (k @ k)


class FlameLayer(torch.nn.Module):
    """Forward: identity (S,) or (B, S), expression (B, E), pose (B, 15) → vertices (B, V', 3), metres."""

    def __init__(
        self, model: FlameModel, n_shape: int, n_expression: int, vertex_ids: np.ndarray | None = None
    ) -> None:
        super().__init__()
        if not 0 < n_shape <= model.shapedirs.shape[2]:
            raise ValueError(f"n_shape must be 1..{model.shapedirs.shape[2]}, got {n_shape}")
        if not 0 < n_expression <= model.n_expression:
            raise ValueError(f"n_expression must be 1..{model.n_expression}, got {n_expression}")
        ids = np.arange(model.n_vertices) if vertex_ids is None else np.asarray(vertex_ids, dtype=np.int64)
        dirs = np.concatenate([model.shapedirs[:, :, :n_shape], model.expressiondirs[:, :, :n_expression]], axis=2)
        self.n_shape, self.n_expression = n_shape, n_expression
        self.register_buffer("v_template", torch.from_numpy(model.v_template[ids].copy()))
        self.register_buffer("dirs", torch.from_numpy(dirs[ids].copy()))
        self.register_buffer("posedirs", torch.from_numpy(model.posedirs[ids].copy()))
        self.register_buffer("weights", torch.from_numpy(model.weights[ids].copy()))
        self.register_buffer("j_template", torch.from_numpy(model.j_regressor @ model.v_template))
        self.register_buffer("j_dirs", torch.from_numpy(np.einsum("jv,vcd->jcd", model.j_regressor, dirs)))
        self.parents = [int(p) for p in model.parents]

    def forward(self, identity: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        batch = expression.shape[0]
        n = self.v_template.shape[0]
        betas = torch.cat([identity.expand(batch, -1), expression], dim=1)
        # plain matrix products: einsum over (batch, vertex) pairs of 3x3 blocks becomes thousands of tiny
        # matmuls on CPU
        v_shaped = self.v_template + (betas @ self.dirs.reshape(n * 3, -1).T).reshape(batch, n, 3)
        joints = self.j_template + (betas @ self.j_dirs.reshape(-1, betas.shape[1]).T).reshape(batch, -1, 3)
        rot = rodrigues(pose.reshape(batch, N_JOINTS, 3))  # (B, 5, 3, 3)
        eye = torch.eye(3, dtype=pose.dtype, device=pose.device)
        pose_feature = (rot[:, 1:] - eye).reshape(batch, -1)
        v_posed = v_shaped + (pose_feature @ self.posedirs.reshape(n * 3, -1).T).reshape(batch, n, 3)
        world = self._chain(rot, joints)  # (B, 5, 4, 4) joint → world
        rotation = world[:, :, :3, :3]
        translation = world[:, :, :3, 3] - (rotation @ joints[..., None])[..., 0]  # rest pose taken out
        # each joint's transform applied to every vertex (batched 3x3 products), then blended by the weights
        per_joint = v_posed[:, None] @ rotation.transpose(-1, -2) + translation[:, :, None, :]  # (B, 5, V, 3)
        return (per_joint * self.weights.T[None, :, :, None]).sum(dim=1)

    def _chain(self, rot: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
        """World transforms of the joints along the kinematic tree."""
        batch = rot.shape[0]
        rel = joints.clone()
        for j, p in enumerate(self.parents):
            if p >= 0:
                rel[:, j] = joints[:, j] - joints[:, p]
        local = torch.zeros(batch, N_JOINTS, 4, 4, dtype=rot.dtype, device=rot.device)
        local[:, :, :3, :3] = rot
        local[:, :, :3, 3] = rel
        local[:, :, 3, 3] = 1.0
        world = [local[:, 0]]
        for j in range(1, N_JOINTS):
            world.append(world[self.parents[j]] @ local[:, j])
        return torch.stack(world, dim=1)
