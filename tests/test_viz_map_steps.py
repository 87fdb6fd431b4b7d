"""The figures of "how a map is made" (viz.map_steps) and the token-attention overlay draw what they are given."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from omniad_lite import viz


def _features(c=6, h=5, w=4, seed=0):
    return np.random.default_rng(seed).standard_normal((c, h, w))


def test_pca_rgb_pair_gives_equal_colours_to_equal_features():
    f = _features()
    perm = np.random.default_rng(1).permutation(20)
    r = f.reshape(6, 20)[:, perm].reshape(6, 5, 4)  # the same feature vectors at other positions
    f_rgb, r_rgb = viz.pca_rgb_pair(f, r)
    assert f_rgb.shape == (5, 4, 3) and f_rgb.min() >= 0 and f_rgb.max() <= 1
    np.testing.assert_allclose(r_rgb.reshape(20, 3), f_rgb.reshape(20, 3)[perm], atol=1e-6)  # one basis, one scale


def test_pca_rgb_pair_shows_a_changed_position_and_only_it():
    f = _features()
    r = f.copy()
    r[:, 2, 1] += 10.0  # one reconstructed position far off
    f_rgb, r_rgb = viz.pca_rgb_pair(torch.from_numpy(f), torch.from_numpy(r))
    changed = np.abs(f_rgb - r_rgb).sum(axis=-1) > 1e-6
    assert changed[2, 1] and changed.sum() == 1  # one basis: every other position keeps its colour
    with pytest.raises(ValueError, match="same shape|one shape"):
        viz.pca_rgb_pair(f, f[:, :3])


def test_reconstruction_figure_rows_and_shared_distance_scale():
    teacher = [_features(6, 8, 8), _features(6, 4, 4, 1), _features(6, 2, 2, 2)]
    recs = [t + 0.1 for t in teacher]
    dists = [np.full(t.shape[1:], 0.1 * (k + 1)) for k, t in enumerate(teacher)]
    fig = viz.reconstruction_figure(teacher, recs, dists, ["scale 1", "scale 2", "scale 3"])
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 9
    distance_panels = [ax.images[0] for ax in panels if ax.images[0].get_array().ndim == 2]
    assert len(distance_panels) == 3
    assert all(im.get_clim() == (0.0, pytest.approx(0.3)) for im in distance_panels)  # one scale: the max
    assert [ax.get_ylabel() for ax in panels[::3]] == ["teacher features", "reconstruction", "1 − cos"]
    fig = viz.reconstruction_figure(teacher, recs, dists, vmax=2.0)
    assert {ax.images[0].get_clim() for ax in fig.axes if ax.images and ax.images[0].get_array().ndim == 2} == \
        {(0.0, 2.0)}
    with pytest.raises(ValueError, match="one reconstruction"):
        viz.reconstruction_figure(teacher, recs[:2], dists)


def test_map_assembly_figure_marks_the_maximum():
    image = np.zeros((16, 16, 3))
    mean = np.zeros((16, 16))
    blurred = np.zeros((16, 16))
    blurred[3, 11] = 0.5
    mask = np.zeros((16, 16))
    mask[2:5, 10:13] = 1
    fig = viz.map_assembly_figure(image, mean, blurred, mask)
    markers = [line for ax in fig.axes for line in ax.lines if line.get_marker() == "x"]
    assert len(markers) == 2 and all(tuple(m.get_xydata()[0]) == (11, 3) for m in markers)  # (col, row)
    maps = [ax.images[-1] for ax in fig.axes[1:4]]
    assert {m.get_clim() for m in maps} == {(0.0, 0.5)}  # mean, blur and overlay on one scale
    with pytest.raises(ValueError, match="one size"):
        viz.map_assembly_figure(image, mean[:8], blurred)


def test_token_attention_overlay_every_token_and_no_clipped_peak():
    att = torch.softmax(4 * torch.randn(16, 4, 4).flatten(1), -1).view(16, 4, 4)
    fig = viz.token_attention_overlay(att, np.zeros((32, 32, 3)))
    panels = [ax for ax in fig.axes if ax.get_title().startswith("token")]
    assert len(panels) == 16
    peak = float(16 * att.max())
    norm = panels[0].images[1].norm
    assert norm.vmax == pytest.approx(peak) and norm.vmin == pytest.approx(1 / peak)  # symmetric around uniform
    k = int(att.flatten(1).amax(1).argmax())
    assert panels[k].get_title() == f"token {k} · peak {peak:.0f}×"
    flat = viz.token_attention_overlay(torch.full((4, 4, 4), 1 / 16), np.zeros((8, 8, 3)))
    assert flat.axes[0].images[1].norm.vmax == 2.0  # a uniform map is not stretched into noise
