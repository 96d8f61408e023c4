"""Invariants of the video DiT and its 3D RoPE: shapes, zero output at init, relative positions,
gradients, and that every conditioning input reaches the output."""

from __future__ import annotations

import pytest
import torch

from phylaw.models.dit import DIT_SIZES, DiT, DiTConfig, count_params, dit_config
from phylaw.models.rope import apply_rope, grid_positions, rope_angles, rope_axis_dims

TINY = {"in_channels": 3, "input_size": (2, 8, 8), "patch_size": (1, 4, 4)}  # 8 tokens


def make_inputs(cfg: DiTConfig, batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random x_t, t, a condition video holding the first frame, and its mask."""
    g = torch.Generator().manual_seed(seed)
    c, (t, h, w) = cfg.in_channels, cfg.input_size
    x_t = torch.randn(batch, c, t, h, w, generator=g)
    mask = torch.zeros(batch, 1, t, h, w)
    mask[:, :, :1] = 1.0
    cond = torch.randn(batch, c, t, h, w, generator=g) * mask
    inputs = {"x_t": x_t, "t": torch.tensor([10, 700][:batch]), "cond_video": cond, "mask": mask}
    if cfg.num_state_cond:
        inputs["state"] = torch.randn(batch, cfg.num_state_cond, generator=g)
    if cfg.text_dim:
        inputs["text"] = torch.randn(batch, cfg.text_dim, generator=g)
    return inputs


def perturb(model: torch.nn.Module, std: float = 0.05, seed: int = 1) -> None:
    """Add noise to every parameter, so that zero-initialised paths carry signal."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)


# ------------------------------------------------------------------ RoPE


@pytest.mark.parametrize("head_dim", [6, 32, 48, 64, 72, 128])
def test_rope_axis_dims_are_even_and_cover_the_head(head_dim):
    dims = rope_axis_dims(head_dim)
    assert sum(dims) == head_dim and all(d % 2 == 0 and d > 0 for d in dims)


def test_rope_dot_product_depends_only_on_relative_position():
    g = torch.Generator().manual_seed(0)
    head_dim, n = 64, 50
    q, k = torch.randn(2, n, head_dim, generator=g, dtype=torch.float64).unbind(0)
    p = torch.randint(0, 20, (n, 3), generator=g)
    p_other = torch.randint(0, 20, (n, 3), generator=g)
    offset = torch.tensor([7, -3, 11])

    def logits(pq, pk):
        rq = apply_rope(q, rope_angles(pq, head_dim, dtype=torch.float64))
        rk = apply_rope(k, rope_angles(pk, head_dim, dtype=torch.float64))
        return (rq * rk).sum(-1)

    base = logits(p, p_other)
    torch.testing.assert_close(logits(p + offset, p_other + offset), base, rtol=0, atol=1e-9)
    # Moving along each axis alone changes the logits: every axis is encoded.
    for axis in range(3):
        shift = torch.zeros(3, dtype=torch.long)
        shift[axis] = 1
        assert not torch.allclose(logits(p + shift, p_other), base)


def test_rope_preserves_norms_and_is_identity_at_origin():
    x = torch.randn(4, 27, 32)
    angles = rope_angles(grid_positions((3, 3, 3)), 32)
    torch.testing.assert_close(apply_rope(x, angles).norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(apply_rope(x, angles)[:, 0], x[:, 0])  # position (0, 0, 0)


def test_grid_positions_follow_the_flattened_token_order():
    pos = grid_positions((2, 3, 4))
    assert pos.shape == (24, 3)
    assert pos[5].tolist() == [0, 1, 1] and pos[-1].tolist() == [1, 2, 3]


# ------------------------------------------------------------------ shapes and counts


@pytest.mark.parametrize("name", list(DIT_SIZES))
def test_forward_shape_for_every_preset(name):
    # The paper's widths with one block, on an 8-token video; the CPU presets at full depth.
    depth = {} if DIT_SIZES[name][1] <= 192 else {"depth": 1}
    cfg = dit_config(name, **TINY, **depth)
    model = DiT(cfg)
    inputs = make_inputs(cfg)
    with torch.no_grad():
        out = model(**inputs)
    assert out.shape == inputs["x_t"].shape


@pytest.mark.parametrize(
    ("name", "paper_m"), [("DiT-S", 22.5), ("DiT-B", 89.5), ("DiT-L", 310.0), ("DiT-XL", 456.0)]
)
def test_shared_adaln_matches_table_1_parameter_counts(name, paper_m):
    cfg = dit_config(name, in_channels=4, patch_size=(1, 2, 2), shared_adaln=True)
    assert abs(count_params(cfg) / 1e6 - paper_m) / paper_m < 0.003


def test_count_params_matches_a_built_model():
    cfg = dit_config("DiT-T", **TINY, num_state_cond=4, text_dim=16)
    assert count_params(cfg) == sum(p.numel() for p in DiT(cfg).parameters())


# ------------------------------------------------------------------ initialisation


@pytest.mark.parametrize("shared_adaln", [False, True])
def test_output_is_exactly_zero_at_init(shared_adaln):
    cfg = dit_config("DiT-T", **TINY, shared_adaln=shared_adaln, num_state_cond=5, text_dim=12)
    out = DiT(cfg)(**make_inputs(cfg))
    assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize("shared_adaln", [False, True])
def test_every_block_starts_as_the_identity(shared_adaln):
    cfg = dit_config("DiT-T", **TINY, shared_adaln=shared_adaln, num_state_cond=5, text_dim=12)
    model = DiT(cfg)
    x = torch.randn(2, cfg.num_tokens, cfg.hidden_size)
    t_emb = torch.randn(2, cfg.hidden_size)  # any timestep embedding
    c = model.t_block(t_emb) if shared_adaln else t_emb  # what the blocks receive
    angles = rope_angles(grid_positions((2, 2, 2)), cfg.head_dim)
    state, text = torch.randn(2, cfg.hidden_size), torch.randn(2, 1, cfg.hidden_size)
    torch.testing.assert_close(model.blocks[0](x, c, angles, state, text), x)


def test_backward_gives_finite_gradients_that_reach_the_output_layer():
    cfg = dit_config("DiT-T", **TINY)
    model = DiT(cfg)
    inputs = make_inputs(cfg)
    loss = (model(**inputs) - inputs["x_t"]).square().mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert model.final_layer.linear.weight.grad.abs().sum() > 0


# ------------------------------------------------------------------ conditioning is wired


@pytest.mark.parametrize("shared_adaln", [False, True])
def test_every_input_changes_the_output(shared_adaln):
    cfg = dit_config("DiT-T", **TINY, shared_adaln=shared_adaln, num_state_cond=5, text_dim=12)
    model = DiT(cfg)
    perturb(model)
    inputs = make_inputs(cfg)
    with torch.no_grad():
        base = model(**inputs)
        for key in ["x_t", "t", "cond_video", "mask", "state", "text"]:
            changed = dict(inputs)
            changed[key] = inputs[key] + 1 if key != "t" else inputs[key] + 100
            assert not torch.allclose(model(**changed), base, atol=1e-6), key


def test_text_tokens_with_a_mask_ignore_padding():
    cfg = dit_config("DiT-T", **TINY, text_dim=12)
    model = DiT(cfg)
    perturb(model)
    inputs = make_inputs(cfg)
    tokens = torch.randn(2, 5, 12)
    keep = torch.tensor([[True] * 3 + [False] * 2] * 2)
    with torch.no_grad():
        padded = model(**{**inputs, "text": tokens}, text_mask=keep)
        tokens[:, 3:] = 99.0  # padding content must not matter
        assert torch.allclose(model(**{**inputs, "text": tokens}, text_mask=keep), padded)


def test_without_blocks_each_output_patch_depends_only_on_its_input_patch():
    """Patchify and unpatchify agree on token positions: a change inside one patch of x_t
    stays inside that patch when no attention mixes the tokens."""
    cfg = dit_config("DiT-T", in_channels=2, input_size=(4, 8, 12), patch_size=(2, 4, 4), depth=0)
    model = DiT(cfg)
    perturb(model)
    inputs = make_inputs(cfg)
    changed = dict(inputs, x_t=inputs["x_t"].clone())
    changed["x_t"][:, :, 2:4, 4:8, 8:12] += 1.0  # the patch at (t, h, w) = (1, 1, 2)
    with torch.no_grad():
        diff = (model(**changed) - model(**inputs)).abs()
    inside = torch.zeros_like(diff, dtype=torch.bool)
    inside[:, :, 2:4, 4:8, 8:12] = True
    assert diff[inside].min() > 0 and diff[~inside].max() == 0


def test_scalar_timestep_and_bf16_autocast():
    cfg = dit_config("DiT-T", **TINY)
    model = DiT(cfg)
    perturb(model)
    inputs = make_inputs(cfg)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**{**inputs, "t": 500.0})
    assert out.shape == inputs["x_t"].shape and torch.isfinite(out).all()


# ------------------------------------------------------------------ errors


def test_bad_inputs_and_names_fail_with_a_clear_message():
    cfg = dit_config("DiT-T", **TINY)
    model = DiT(cfg)
    inputs = make_inputs(cfg)
    with pytest.raises(ValueError, match="mask"):
        model(**{**inputs, "mask": inputs["mask"][:, :, :1]})
    with pytest.raises(ValueError, match="num_state_cond"):
        model(**inputs, state=torch.zeros(2, 3))
    with pytest.raises(KeyError, match="DiT-S"):
        dit_config("DiT-XXL")
    with pytest.raises(ValueError, match="divisible"):
        DiTConfig(input_size=(8, 15, 16))
