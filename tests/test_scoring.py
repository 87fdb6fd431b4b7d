"""omniad_lite.scoring against scipy's gaussian_filter and a plain per-scale numpy reference."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter

from omniad_lite.model.anomaly_map import anomaly_map, gaussian_blur, gaussian_kernel1d, image_scores


@pytest.mark.parametrize("shape", [(2, 64, 48), (1, 7, 5), (3, 33, 40)])
def test_blur_matches_scipy_reflect(shape):
    # (1, 7, 5) is smaller than the kernel radius 16: scipy's reflection repeats periodically there.
    rng = np.random.default_rng(0)
    maps = rng.random(shape).astype(np.float32) * 2
    ours = gaussian_blur(torch.from_numpy(maps), sigma=4.0).numpy()
    ref = np.stack([gaussian_filter(m.astype(np.float64), sigma=4.0) for m in maps])
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)


def test_blur_is_not_torch_reflect():
    # Guard against the tempting shortcut F.pad(mode="reflect"): it skips the edge sample and differs from scipy.
    rng = np.random.default_rng(1)
    m = rng.random((1, 40, 40)).astype(np.float32)
    k = gaussian_kernel1d(4.0)
    r = (k.numel() - 1) // 2
    x = F.pad(torch.from_numpy(m).unsqueeze(1), (r, r, r, r), mode="reflect")
    wrong = F.conv2d(F.conv2d(x, k.view(1, 1, -1, 1)), k.view(1, 1, 1, -1))[:, 0].numpy()
    ref = gaussian_filter(m[0].astype(np.float64), 4.0)
    assert np.abs(wrong[0] - ref).max() > 1e-4
    np.testing.assert_allclose(gaussian_blur(torch.from_numpy(m))[0].numpy(), ref, atol=1e-5)


def test_kernel_matches_scipy_radius():
    # scipy: radius = int(truncate * sigma + 0.5) = 16 for sigma 4 → 33 taps
    assert gaussian_kernel1d(4.0).numel() == 33
    impulse = np.zeros(81)
    impulse[40] = 1
    ref = gaussian_filter(impulse, 4.0)[40 - 16:40 + 17]
    np.testing.assert_allclose(gaussian_kernel1d(4.0, dtype=torch.float64).numpy(), ref, atol=1e-12)


def test_anomaly_map_matches_reference():
    torch.manual_seed(0)
    feats = [torch.randn(2, 8, 16, 16), torch.randn(2, 16, 8, 8), torch.randn(2, 32, 4, 4)]
    recs = [f + 0.5 * torch.randn_like(f) for f in feats]
    out = anomaly_map(feats, recs, 32)
    assert out.shape == (2, 32, 32) and out.dtype == torch.float32
    # independent reference: numpy cosine, torch bilinear (align_corners=True), scipy blur
    ups = []
    for f, r in zip(feats, recs):
        fn, rn = f.numpy(), r.numpy()
        cos = (fn * rn).sum(1) / (np.linalg.norm(fn, axis=1) * np.linalg.norm(rn, axis=1))
        ups.append(F.interpolate(torch.from_numpy(1 - cos)[:, None], size=(32, 32), mode="bilinear",
                                 align_corners=True)[:, 0].numpy())
    mean = np.mean(ups, axis=0)
    ref = np.stack([gaussian_filter(m.astype(np.float64), 4.0) for m in mean])
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)
    np.testing.assert_allclose(image_scores(out).numpy(), ref.reshape(2, -1).max(1), atol=1e-5)


def test_anomaly_map_perfect_reconstruction_is_zero_and_range():
    feats = [torch.randn(1, 4, 8, 8)]
    assert anomaly_map(feats, [f.clone() for f in feats], 16).abs().max() < 1e-5
    opposite = anomaly_map(feats, [-f for f in feats], 16, sigma=0)
    np.testing.assert_allclose(opposite.numpy(), 2.0, atol=1e-5)


def test_anomaly_map_shape_errors():
    with pytest.raises(ValueError, match="same"):
        anomaly_map([torch.zeros(1, 4, 8, 8)], [torch.zeros(1, 4, 4, 4)], 16)
    with pytest.raises(ValueError, match="one reconstruction per"):
        anomaly_map([torch.zeros(1, 4, 8, 8)], [], 16)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(torch.zeros(1, 4, 4), sigma=-1)
