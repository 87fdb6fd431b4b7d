"""Tests for omniad_lite.viz (figures, widgets) and omniad_lite.evaluation.reference_results (Agg backend)."""
from __future__ import annotations

import base64

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from omniad_lite import viz as plots  # noqa: E402
from omniad_lite.evaluation.reference_results import METRIC_COLUMNS, reference_table  # noqa: E402
from omniad_lite.viz import curve_plots as curves  # noqa: E402
from omniad_lite.viz import widgets


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _toy_results(n_per_class=3, size=16, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.random((2 * n_per_class, size, size, 3)).astype(np.float32)
    maps = rng.random((2 * n_per_class, size, size)).astype(np.float32) * 0.1
    masks = np.zeros_like(maps)
    labels = np.array([0, 1, 1] * 2)
    for i in np.flatnonzero(labels):
        masks[i, 4:8, 4:8] = 1
        maps[i, 4:8, 4:8] += 1.0
    scores = maps.reshape(len(maps), -1).max(1)
    return widgets.ExplorerData(images, maps, masks, ["a"] * n_per_class + ["b"] * n_per_class, scores, labels)


def test_to_display_image_undoes_normalisation():
    rgb = torch.rand(3, 5, 7)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    normed = (rgb - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    out = plots.to_display_image(normed, mean, std)
    assert out.shape == (5, 7, 3)
    np.testing.assert_allclose(out, rgb.permute(1, 2, 0).numpy(), atol=1e-5)
    u8 = np.full((4, 4, 3), 255, np.uint8)
    assert plots.to_display_image(u8).max() == 1.0


def test_overlay_draws_image_map_and_contours():
    data = _toy_results()
    fig, ax = plt.subplots()
    im = plots.overlay(ax, data.images[1], data.maps[1], data.masks[1], vmin=0, vmax=2, threshold=0.5)
    assert len(ax.images) == 2
    np.testing.assert_array_equal(ax.images[0].get_array(), data.images[1])
    np.testing.assert_array_equal(im.get_array(), data.maps[1])
    assert im.get_clim() == (0, 2)
    assert len(ax.collections) == 2  # ground-truth outline + thresholded prediction outline
    with pytest.raises(ValueError, match="does not match"):
        plots.overlay(ax, data.images[1], data.maps[1][:8])


def test_heatmap_gallery_layout_and_shared_scale():
    data = _toy_results()
    fig = plots.heatmap_gallery(list(data.images[:4]), data.maps[:4], data.masks[:4], ["w", "x", "y", "z"])
    image_axes = [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]
    assert len(image_axes) == 12  # 3 rows × 4 samples
    overlays = [ax.images[1] for ax in image_axes if len(ax.images) == 2]
    assert len(overlays) == 4
    assert all(o.get_clim() == (float(data.maps[:4].min()), float(data.maps[:4].max())) for o in overlays)
    assert [ax.get_title() for ax in image_axes[:4]] == ["w", "x", "y", "z"]


def test_loss_curve_plots_history_values(tmp_path):
    hist = pd.DataFrame({"step": [5, 10, 15], "loss": [3.0, 2.0, 1.5], "lr": [1e-3] * 3})
    path = tmp_path / "history.csv"
    hist.to_csv(path, index=False)
    fig = plots.loss_curve(path)
    raw, smooth = fig.axes[0].get_lines()
    np.testing.assert_array_equal(raw.get_xdata(), [5, 10, 15])
    np.testing.assert_array_equal(raw.get_ydata(), [3.0, 2.0, 1.5])
    # moving average, span 2 (alpha 2/3, weights 1, 1/3, 1/9 on the newest-first values), by hand
    np.testing.assert_allclose(smooth.get_ydata(), [3.0, (2 + 3 / 3) / (4 / 3), (1.5 + 2 / 3 + 3 / 9) / (13 / 9)])
    assert fig.axes[0].get_yscale() == "log"
    (lr_line,) = fig.axes[1].get_lines()  # the learning rate on its own axis
    np.testing.assert_array_equal(lr_line.get_ydata(), [1e-3] * 3)
    legend = fig.axes[0].get_legend()
    assert legend.get_bbox_to_anchor().y0 > fig.axes[0].get_window_extent().y1  # above the data
    with pytest.raises(ValueError, match="loss column"):
        plots.loss_curve(hist[["step", "lr"]])


def test_roc_curves_match_sklearn():
    scores, labels = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])
    fig = plots.roc_curves({"c": (scores, labels)})
    line = fig.axes[0].get_lines()[0]
    fpr, tpr, _ = roc_curve(labels, scores)
    np.testing.assert_allclose(line.get_xdata(), fpr)
    np.testing.assert_allclose(line.get_ydata(), tpr)
    assert "75.0" in line.get_label()  # AUROC of this classic example is 0.75


def test_pro_curve_hand_computed():
    # two images; image 0 has two 8-connected regions (diagonal pixels join into one), image 1 one region.
    masks = np.zeros((2, 4, 4))
    masks[0, 0, 0] = masks[0, 1, 1] = 1  # diagonal neighbours → one region of 2 pixels
    masks[0, 3, 3] = 1  # a second region
    masks[1, 0:2, 2:4] = 1  # a 4-pixel region
    maps = np.zeros((2, 4, 4))
    maps[0, 0, 0] = 1.0  # half of region 1
    maps[1, 0, 2:4] = 1.0  # half of region 3
    fpr, pro = plots.pro_curve(maps, masks, num_thresholds=2)
    # thresholds [1, 0]: at t=1 FPR 0, overlaps (1/2, 0, 2/4) → PRO 1/3; at t=0 FPR 1 > 0.3, PRO 1:
    # the curve is closed at FPR 0.3 by linear interpolation: 1/3 + (1 - 1/3) * 0.3 / 1
    np.testing.assert_allclose(fpr, [0.0, 0.0, 0.3])
    np.testing.assert_allclose(pro, [0.0, 1 / 3, 1 / 3 + 2 / 3 * 0.3])
    with pytest.raises(ValueError, match="both anomalous and normal"):
        plots.pro_curve(maps, np.zeros_like(masks))


def test_pro_curve_perfect_map_reaches_one():
    data = _toy_results()
    fpr, pro = plots.pro_curve(data.masks, data.masks)
    assert pro[-1] == 1.0 and fpr.max() <= curves.PRO_MAX_FPR
    fig = plots.pro_curves({"a": (data.masks, data.masks)})
    assert "100.0" in fig.axes[0].get_lines()[0].get_label()


def test_pca_rgb_recovers_dominant_direction():
    h, w, c = 6, 5, 8
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    rng = np.random.default_rng(0)
    d1, d2 = np.eye(c)[0], np.eye(c)[1]
    feats = 10 * xx[..., None] * d1 + 3 * yy[..., None] * d2 + 0.01 * rng.standard_normal((h, w, c))
    rgb = plots.pca_rgb(torch.from_numpy(feats.transpose(2, 0, 1)))
    assert rgb.shape == (h, w, 3) and rgb.min() >= 0 and rgb.max() <= 1
    # first component varies with x only (largest variance), second with y only
    assert np.abs(np.corrcoef(rgb[..., 0].ravel(), xx.ravel())[0, 1]) > 0.99
    assert np.abs(np.corrcoef(rgb[..., 1].ravel(), yy.ravel())[0, 1]) > 0.99
    with pytest.raises(ValueError, match="C >= 3"):
        plots.pca_rgb(np.zeros((2, 4, 4)))
    fig = plots.feature_pca_figure([feats.transpose(2, 0, 1)] * 2, image=np.zeros((6, 5, 3)))
    assert len(fig.axes) == 3


def test_metric_bars_heights_match_table():
    table = pd.DataFrame({"image_auroc": [90.0, 80.0], "pixel_auroc": [95.0, 85.0], "pixel_aupro": [70.0, 60.0]},
                         index=["a", "b"])
    fig = plots.metric_bars(table)
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [90.0, 80.0, 95.0, 85.0, 70.0, 60.0]
    with pytest.raises(ValueError, match="not columns"):
        plots.metric_bars(table, ["mad"])


def test_token_attention_maps_panels():
    att = torch.softmax(torch.randn(20, 4, 4).flatten(1), -1).view(20, 4, 4)
    fig = plots.token_attention_maps(att, ncols=8, max_tokens=12)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 12
    np.testing.assert_allclose(shown[3].images[0].get_array(), 16 * att[3].numpy(), rtol=1e-6)  # ÷ uniform 1/16
    assert len({ax.images[0].get_clim() for ax in shown}) == 1  # one colour scale for every panel
    top = float(np.percentile(16 * att[:12].numpy(), 99.5))  # the brightest 0.5 % are clipped
    assert shown[0].images[0].get_clim() == (0, pytest.approx(max(top, 1.0)))
    assert any(ax.get_ylabel().startswith("attention ÷ uniform") for ax in fig.axes)  # the colour bar


def test_token_attention_comparison_shares_one_scale():
    trained = torch.softmax(3 * torch.randn(4, 4, 4).flatten(1), -1).view(4, 4, 4)
    untrained = torch.full((4, 4, 4), 1 / 16)
    fig = plots.token_attention_comparison({"trained": trained, "untrained": untrained}, image=np.zeros((8, 8, 3)))
    maps = [ax.images[0] for ax in fig.axes if ax.images and ax.get_title().startswith("token")]
    assert len(maps) == 8 and len({m.get_clim() for m in maps}) == 1
    np.testing.assert_allclose(maps[4].get_array(), np.ones((4, 4)))  # uniform attention is 1 everywhere
    assert [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")] == ["trained", "untrained"]


def test_branch_sensitivity_local_is_5x5_global_is_everywhere():
    from omniad_lite.model.omni_block import OmniBlock
    from omniad_lite.viz.attention import branch_sensitivity

    torch.manual_seed(0)
    block = OmniBlock(16, num_heads=2, num_query_tokens=4, num_kv_tokens=4).eval()
    x = torch.randn(1, 12, 12, 16)
    before = block.local_branch(x)
    maps = branch_sensitivity(block, x, (6, 5))
    assert all(abs(float(m.sum()) - 1) < 1e-5 for m in maps.values())
    local = maps["local branch"]
    assert int((local > 0).sum()) == 25 and float(local[4:9, 3:8].sum()) == pytest.approx(1.0)  # kernel 5
    assert int((maps["global branch"] > 0).sum()) == 144  # through the tokens: every position
    torch.testing.assert_close(block.local_branch(x), before)  # the hooks are gone
    fig = plots.sensitivity_maps(maps, (6, 5), image=np.zeros((24, 24, 3)))
    norms = {ax.images[0].norm for ax in fig.axes if ax.images and ax.get_title() != "input"}
    assert len(norms) == 1  # one (log) colour scale for both branches


def test_reference_table_mad_is_mean_of_seven():
    t = reference_table("mvtec")
    assert list(t.columns) == list(METRIC_COLUMNS)
    mamba = t.loc["MambaAD"]
    assert abs(mamba[list(METRIC_COLUMNS[:7])].mean() - mamba["mad"]) < 0.05  # published mAD = mean of 7
    assert np.isnan(t.loc["InvAD", "image_auroc"]) and t.loc["InvAD", "mad"] == 86.7
    with pytest.raises(ValueError, match="mvtec"):
        reference_table("btad")


def test_ader_100_epoch_table_as_printed():
    t = reference_table("mvtec", "ader-100")
    assert list(t.columns) == list(METRIC_COLUMNS) and len(t) == 8
    # spot values copied by hand from ADer's "MVTec AD-100epochs" table
    assert tuple(t.loc["UniAD", ["image_auroc", "pixel_aupro", "mad"]]) == (92.5, 89.3, 82.0)
    assert tuple(t.loc["MambaAD", ["image_ap", "pixel_ap", "pixel_f1max"]]) == (99.3, 55.1, 57.6)
    diad = t.loc["DiAD"]
    assert abs(diad[list(METRIC_COLUMNS[:7])].mean() - diad["mad"]) < 0.05  # the one row whose mAD is the mean
    assert (t.drop(columns="mad") <= 100).all().all() and (t.drop(columns="mad") > 0).all().all()
    with pytest.raises(ValueError, match="ader-100"):
        reference_table("mvtec", "ader-300")
    with pytest.raises(ValueError, match="no ader-100 results.*visa"):
        reference_table("visa", "ader-100")


def test_explorer_static_fallback_and_draw_sample():
    data = _toy_results()
    anomalous_by_score = sorted([1, 2], key=lambda i: -data.scores[i])
    assert data.indices("a") == anomalous_by_score + [0]  # anomalous first, then by decreasing score
    fig = widgets.explorer(data, static=True)
    assert isinstance(fig, Figure)
    assert sum(1 for ax in fig.axes if len(ax.images) == 2) == 2 * widgets.STATIC_PER_CLASS
    assert "map ≥ 0.500" in widgets.explorer(data, static=True, threshold=0.5)._suptitle.get_text()
    fig = widgets.draw_sample(data, 1, threshold=0.5)
    pred = fig.axes[2].images[0].get_array()
    np.testing.assert_array_equal(pred, (data.maps[1] >= 0.5).astype(np.float32))
    assert pred.sum() == 16  # exactly the 4×4 defect exceeds 0.5
    with pytest.raises(ValueError, match="one entry per image"):
        widgets.ExplorerData(data.images, data.maps[:2], data.masks, data.cls_names, data.scores, data.labels)


def test_explorer_widgets_follow_controls(monkeypatch):
    pytest.importorskip("ipywidgets")
    monkeypatch.setattr(widgets, "display_figure", lambda fig: plt.close(fig))
    data = _toy_results()
    assert not widgets.widgets_available()  # plain pytest process: no kernel → static by default
    box = widgets.explorer(data, static=False, threshold=0.3)
    controls = box.children[0].children
    cls_box, img_slider, thr_slider = controls
    assert list(cls_box.options) == ["a", "b"] and img_slider.max == 2
    assert box.last_drawn == (data.indices("a")[0], 0.3)
    cls_box.value = "b"
    assert box.last_drawn[0] == data.indices("b")[0]
    img_slider.value = 2
    thr_slider.value = 0.9
    assert box.last_drawn == (data.indices("b")[2], 0.9)
    bundle = box._repr_mimebundle_()  # widget view for JupyterLab, a PNG for viewers without widgets
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")


def test_explorer_display_in_a_batch_run_adds_a_separate_picture(monkeypatch):
    """papermill/nbconvert: the widget (its text a note) and then the PNG, which nbconvert HTML can show."""
    import IPython.display

    from omniad_lite import progress

    pytest.importorskip("ipywidgets")
    monkeypatch.setattr(widgets, "display_figure", lambda fig: plt.close(fig))
    box = widgets.explorer(_toy_results(), static=False)
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    monkeypatch.setattr(progress, "interactive_frontend", lambda: False)
    box._ipython_display_()
    (view, raw_view), (image, _) = shown
    assert raw_view and "application/vnd.jupyter.widget-view+json" in view and "image/png" not in view
    assert view["text/plain"] == widgets.STATIC_NOTE
    assert isinstance(image, IPython.display.Image) and image.data.startswith(b"\x89PNG")
    shown.clear()
    monkeypatch.setattr(progress, "interactive_frontend", lambda: True)  # JupyterLab: one bundle, PNG inside
    box._ipython_display_()
    ((bundle, raw),) = shown
    assert raw and {"application/vnd.jupyter.widget-view+json", "image/png"} <= set(bundle)


def test_pro_curve_area_matches_metrics_aupro():
    """Our sampled PRO curve's area agrees with omniad_lite.metrics' exact AU-PRO (independent code)."""
    from omniad_lite.evaluation.metrics import compute_metrics

    rng = np.random.default_rng(1)
    masks = np.zeros((6, 24, 24), np.uint8)
    masks[0, 2:6, 2:9] = masks[1, 10:20, 12:15] = masks[2, 5:8, 5:8] = masks[2, 15:22, 1:4] = 1
    maps = rng.random(masks.shape) + 1.5 * masks * rng.random(masks.shape)  # informative but noisy
    labels = masks.reshape(6, -1).max(1)
    exact = compute_metrics(maps.reshape(6, -1).max(1), labels, maps, masks, "kit")["pixel_aupro"]
    fpr, pro = plots.pro_curve(maps, masks, num_thresholds=2000)
    assert abs(curves._trapezoid(pro, fpr) / curves.PRO_MAX_FPR - exact) < 0.01


def test_live_loss_plot_redraws_history(tmp_path, monkeypatch):
    import IPython.display

    live = widgets.LiveLossPlot(tmp_path, every_s=3600)
    live()  # no kernel, no history: nothing happens
    assert live.redraws == 0
    pd.DataFrame({"step": [5, 10], "loss": [2.0, 1.0]}).to_csv(tmp_path / "history.csv", index=False)
    shown = []

    class Handle:
        def update(self, fig):
            shown.append(fig.axes[0].get_lines()[0].get_ydata().tolist())

    def fake_display(fig, display_id=False):
        shown.append(fig.axes[0].get_lines()[0].get_ydata().tolist())
        return Handle()

    monkeypatch.setattr(widgets, "widgets_available", lambda: True)
    monkeypatch.setattr(IPython.display, "display", fake_display)
    live()  # first draw: a new display
    live(step=11)  # within every_s: skipped
    pd.DataFrame({"step": [5, 10, 15], "loss": [2.0, 1.0, 0.5]}).to_csv(tmp_path / "history.csv", index=False)
    live()  # forced redraw updates the same display
    assert shown == [[2.0, 1.0], [2.0, 1.0, 0.5]] and live.redraws == 2


def test_expectation_table_lists_the_published_anchors_beside_ours():
    from omniad_lite.evaluation.reference_results import REFERENCE_RESULTS
    from omniad_lite.viz import table_display as tables

    ours = pd.Series(dict(zip(METRIC_COLUMNS, [95.6, 97.0, 93.1, 98.5, 60.1, 58.1, 92.0, 84.9])))
    t = plots.expectation_table({"demo run": ours})
    assert list(t.columns) == [tables.SHORT_NAMES[m] for m in METRIC_COLUMNS]
    assert t.loc[("VisA", "MambaAD"), "I-AUROC"] == REFERENCE_RESULTS["visa"]["MambaAD"]["image_auroc"]
    assert t.loc[("Real-IAD", "ViTAD"), "mAD"] == 67.8 and np.isnan(t.loc[("Real-IAD", "ViTAD"), "AU-PRO"])
    assert t.loc[(tables.OTHER_DATA, "demo run"), "I-AUROC"] == 95.6  # ours, labelled as other data
    assert t.loc[(tables.ADER_100_LABEL, "UniAD"), "I-AUROC"] == 92.5  # the 100-epoch yardstick
    assert len(t) == 3 * 3 + 8 + 1
    assert max(len(line) for line in t.to_string().splitlines()) <= 100


def test_decision_overlays_share_one_colour_bar():
    from omniad_lite.viz.overlays import DECISION_VMAX, decision_gallery, decision_overlay

    rgb = np.full((40, 60, 3), 128, np.uint8)
    nmap = np.linspace(-1, 3, 40 * 60).reshape(40, 60)
    with_bar = decision_overlay(rgb, nmap, "normal 0.10", False)
    bare = decision_overlay(rgb, nmap, "normal 0.10", False, colour_bar=False)
    assert bare.shape == (40, 60, 3) and with_bar.shape[1] > 60
    np.testing.assert_array_equal(with_bar[:, :60], bare)  # the same overlay, only the strip differs
    fig = decision_gallery([bare, bare], ["a", "b"], colour_bar=True)
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and bars[0].get_ylim() == (0.0, DECISION_VMAX)
    assert len(decision_gallery([bare, bare]).axes) == 2  # no bar unless asked
    plt.close("all")
