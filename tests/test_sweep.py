"""Ablation sweeps: planning (fails before anything runs), the seed-spread verdicts on hand-made numbers,
the run folders (reuse, conflicts, overwrite), the kNN variant beside Omni-AD, and the plot.
"""
from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from omniad_lite.data.factory import samples_from_config
from omniad_lite.evaluation.calibration import calibrate
from omniad_lite.evaluation.prediction import predict
from omniad_lite.run import RunDir
from omniad_lite.sweep import display_table, plan_sweep, run_sweep, slug, summarise
from omniad_lite.viz.sweep_plots import sweep_plot

matplotlib.use("Agg")


def hand_runs() -> pd.DataFrame:
    rows = [("ref", 0, 90.0), ("ref", 1, 92.0), ("better", 0, 95.0), ("better", 1, 96.0),
            ("apart", 0, 93.0), ("apart", 1, 94.0), ("noisy", 0, 80.0), ("noisy", 1, 89.9), ("one seed", 0, 99.0)]
    return pd.DataFrame([{"variant": v, "seed": s, "image_auroc": x, "mad": x / 2} for v, s, x in rows])


def test_summarise_flags_a_difference_only_beyond_both_spreads():
    s = summarise(hand_runs(), ["image_auroc"])
    assert list(s.index) == ["ref", "better", "apart", "noisy", "one seed"]
    assert s.loc["better", "image_auroc"] == 95.5 and s.loc["better", "image_auroc_delta"] == 4.5
    assert s.loc["ref", "image_auroc_spread"] == 2.0 and s.loc["noisy", "image_auroc_spread"] == pytest.approx(9.9)
    # better: 4.5 > 2 + 1 + 0.1; apart: ranges do not overlap but 2.5 < 2 + 1 + 0.1; noisy: 6.05 < 2 + 9.9 + 0.1
    verdict = s["image_auroc_beyond_spread"].to_dict()
    assert verdict == {"ref": None, "better": True, "apart": False, "noisy": False, "one seed": None}
    text = display_table(s, ["image_auroc"])
    assert text.loc["better", "Δ image_auroc"] == "+4.5 beyond spread"
    assert text.loc["apart", "Δ image_auroc"] == "+2.5 within spread"
    assert text.loc["one seed", "Δ image_auroc"] == "+8.0 ? (1 seed)"
    assert text.loc["ref", "image_auroc"] == "91.0 [90.0–92.0]"
    with pytest.raises(ValueError, match="reference variant 'nope'"):
        summarise(hand_runs(), ["image_auroc"], reference="nope")


@pytest.mark.parametrize("seeds, low, high", [(2, 0.07, 0.17), (3, 0.0, 0.03)])
def test_false_alarm_rate_of_the_verdict_under_pure_seed_noise(seeds, low, high):
    """Variants that differ only by seed noise (σ = 1 point) are flagged about 1 in 8 (2 seeds), 1 in 100 (3)."""
    rng = np.random.default_rng(seeds)
    flags = []
    for _ in range(150):
        values = rng.normal(90.0, 1.0, size=(21, seeds)).round(1)  # stored metrics have one decimal
        runs = pd.DataFrame([{"variant": f"v{v}", "seed": k, "image_auroc": values[v, k]}
                             for v in range(21) for k in range(seeds)])
        flags += summarise(runs, ["image_auroc"])["image_auroc_beyond_spread"].iloc[1:].tolist()
    assert low <= np.mean(flags) <= high


def test_sweep_plot_draws_one_panel_per_metric_and_bolds_separated_variants():
    runs = hand_runs()
    s = summarise(runs, ["image_auroc", "mad"])
    fig = sweep_plot(runs, s, ["image_auroc", "mad"])
    assert len(fig.axes) == 2
    labels = {t.get_text(): t.get_fontweight() for t in fig.axes[0].get_yticklabels()}
    assert labels["better"] == "bold" and labels["apart"] == "normal"
    with pytest.raises(ValueError, match="missing"):
        sweep_plot(runs, s, ["pixel_aupro"])


def test_plan_sweep_checks_every_variant_before_running(tiny_cfg, tmp_path):
    cfg = tiny_cfg()
    plan = plan_sweep(cfg, {"base": [], "kNN 1%": ["method=knn", "knn.coreset_ratio=0.01"]}, [0, 1], tmp_path)
    assert [(r.variant, r.seed, r.method) for r in plan] == [("base", 0, "omniad"), ("base", 1, "omniad"),
                                                             ("kNN 1%", 0, "knn"), ("kNN 1%", 1, "knn")]
    assert plan[3].run_dir == RunDir(tmp_path / "knn_1" / "seed1") and plan[3].cfg.train.seed == 1
    assert plan[2].settings.coreset_ratio == 0.01 and plan[0].settings is None and plan[2].cfg.method == "knn"
    with pytest.raises(ValueError, match="variant 'typo': .*ModelConfig.ffn='fast'"):
        plan_sweep(cfg, {"base": [], "typo": ["model.ffn=fast"]}, [0], tmp_path)
    with pytest.raises(ValueError, match="share the folder name"):
        plan_sweep(cfg, {"a b": [], "a-b": []}, [0], tmp_path)
    with pytest.raises(ValueError, match="must be a list"):
        plan_sweep(cfg, {"a": "model.ffn=resampled"}, [0], tmp_path)
    assert slug("no global branch (local only)") == "no_global_branch_local_only"


@pytest.mark.slow  # four tiny runs (two trained for 2-3 steps, two kNN fits), each evaluated
def test_run_sweep_runs_reuses_and_refuses_to_mix_configs(tiny_cfg, tmp_path, capsys):
    cfg = tiny_cfg(iterations=2)
    variants = {"omni": [], "knn": ["method=knn", "knn.coreset_size=16"]}
    runs = run_sweep(cfg, variants, [0], tmp_path / "sweep")
    assert list(zip(runs["variant"], runs["seed"], runs["method"], runs["steps"])) == [
        ("omni", 0, "omniad", 2), ("knn", 0, "knn", 0)]
    assert not runs["reused"].any() and runs["image_auroc"].between(0, 100).all()
    for _, r in runs.iterrows():  # each row holds its run directory's metrics.json
        assert RunDir(r["run_dir"]).read_metrics()["final"]["mean"]["mad"] == r["mad"]
    knn_run = runs["run_dir"].iloc[1]  # a sweep's kNN run decides like any run: it has thresholds.json
    images = [s.image_path for s in samples_from_config(cfg.data, "test")][:4]
    assert all(p.is_anomalous is not None for p in predict(knn_run, images, device="cpu"))
    assert calibrate(knn_run, method="f1").method == "f1"
    again = run_sweep(cfg, {"knn": variants["knn"]}, [0, 1], tmp_path / "sweep")  # only the new seed runs
    assert list(again["reused"]) == [True, False] and again["mad"].iloc[0] == runs["mad"].iloc[1]
    assert "reused" in capsys.readouterr().out
    with pytest.raises(FileExistsError, match="another config"):
        run_sweep(cfg.with_overrides({"train.iterations": 3}), variants, [0], tmp_path / "sweep")
    redo = run_sweep(cfg.with_overrides({"train.iterations": 3}), {"omni": []}, [0], tmp_path / "sweep",
                     overwrite=True)
    assert list(redo["steps"]) == [3] and not redo["reused"].any()
    # a kNN fit interrupted after its config was written is started again, not refused
    (tmp_path / "sweep" / "knn" / "seed1" / RunDir.METRICS).unlink()
    assert list(run_sweep(cfg, {"knn": variants["knn"]}, [1], tmp_path / "sweep")["reused"]) == [False]
