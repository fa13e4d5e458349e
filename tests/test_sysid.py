"""System-identification CNNs: shapes, parameter formulas, penalties by hand, a short fit."""

import numpy as np
import pytest
import torch
from torch import nn

from course_tools.datasets import simulated_retina
from course_tools.models.sysid import (
    V1CNN,
    FactorizedReadout,
    FFTConv2d,
    GaussianNoise,
    RetinaCNN,
    make_lagged_movie,
)
from course_tools.models.training import fit, poisson_loss, predict


@pytest.fixture(autouse=True)
def _small_models_on_one_thread():
    """These tiny models run fastest on one thread (and do not spin against other processes)."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(n_threads)


# The 3x3 Laplacian of the smoothness penalties; ||L * delta||^2 = 4 (1/4)^2 + 4 (1/2)^2 + 9.
LAPLACIAN_ENERGY = 4 * 0.25**2 + 4 * 0.5**2 + 3.0**2


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------ lagged movie
def test_lagged_movie_is_an_aligned_view():
    movie = np.arange(7 * 3 * 2, dtype=float).reshape(7, 3, 2)
    lagged = make_lagged_movie(movie, 4)
    assert lagged.shape == (4, 4, 3, 2)
    assert np.shares_memory(lagged, movie)
    for i in range(4):
        for j in range(4):
            np.testing.assert_array_equal(lagged[i, j], movie[i + j])
    # the sample predicting bin t ends with frame t
    t = 5
    np.testing.assert_array_equal(lagged[t - 4 + 1, -1], movie[t])


@pytest.mark.parametrize("n_lags", [0, 8, 2.0, True])
def test_lagged_movie_errors(n_lags):
    with pytest.raises(ValueError, match="n_lags"):
        make_lagged_movie(np.zeros((7, 3, 3)), n_lags)


def test_lagged_movie_needs_a_3d_movie():
    with pytest.raises(ValueError, match="n_frames, H, W"):
        make_lagged_movie(np.zeros((7, 3)), 2)


# ------------------------------------------------------------------------------ building blocks
def test_fft_convolution_matches_direct_convolution_and_its_gradients():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 17, 14, generator=gen, dtype=torch.float64)
    fft_conv = FFTConv2d(5, 4, 6).double()
    direct = nn.Conv2d(5, 4, 6).double()
    direct.load_state_dict(fft_conv.state_dict())
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y1, y2 = fft_conv(x1), direct(x2)
    assert y1.shape == y2.shape == (3, 4, 12, 9)
    torch.testing.assert_close(y1, y2, rtol=1e-9, atol=1e-10)
    weights = torch.randn(y1.shape, generator=gen, dtype=torch.float64)
    (y1 * weights).sum().backward()
    (y2 * weights).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(fft_conv.weight.grad, direct.weight.grad, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(fft_conv.bias.grad, direct.bias.grad)


def test_gaussian_noise_only_in_training():
    layer = GaussianNoise(0.1)
    x = torch.zeros(20000)
    layer.train()
    noise = layer(x)
    assert noise.std().item() == pytest.approx(0.1, rel=0.03)
    assert abs(noise.mean().item()) < 0.005
    layer.eval()
    assert torch.equal(layer(x), x)
    with pytest.raises(ValueError, match="std"):
        GaussianNoise(-1.0)


def test_factorized_readout_equals_the_full_sum():
    readout = FactorizedReadout(3, 4, 5, 2)
    x = torch.randn(6, 3, 4, 5)
    expected = torch.einsum("ncyx,kyx,kc->nk", x, readout.mask, readout.features) + readout.bias
    torch.testing.assert_close(readout(x), expected)


# ------------------------------------------------------------------------------ RetinaCNN
def retina_formula(n_cells, n_lags, size, c1, k1, c2, k2, batchnorm=True):
    s2 = size - k1 + 1 - k2 + 1
    count = (n_lags * k1**2 + 1) * c1 + (c1 * k2**2 + 1) * c2 + (c2 * s2**2 + 1) * n_cells
    return count + (2 * (c1 + c2) if batchnorm else 0)


def test_retina_cnn_defaults_shape_and_parameter_count():
    model = RetinaCNN(8)
    assert n_params(model) == retina_formula(8, 40, 50, 8, 15, 8, 11)
    model.eval()
    out = model(torch.randn(3, 40, 50, 50))
    assert out.shape == (3, 8)
    assert (out > 0).all()


@pytest.mark.parametrize("batchnorm", [True, False])
def test_retina_cnn_parameter_count_follows_the_formula(batchnorm):
    model = RetinaCNN(
        3,
        n_lags=10,
        image_size=30,
        conv1_channels=4,
        conv1_kernel=9,
        conv2_channels=6,
        conv2_kernel=7,
        batchnorm=batchnorm,
    )
    assert n_params(model) == retina_formula(3, 10, 30, 4, 9, 6, 7, batchnorm)
    assert model(torch.randn(2, 10, 30, 30)).shape == (2, 3)


def test_retina_cnn_noise_is_active_only_in_training():
    model = RetinaCNN(2, n_lags=6, image_size=20, conv1_kernel=7, conv2_kernel=5)
    x = torch.randn(4, 6, 20, 20)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))
    quiet = RetinaCNN(2, n_lags=6, image_size=20, conv1_kernel=7, conv2_kernel=5, noise_std=0.0)
    quiet.train()
    assert torch.equal(quiet(x), quiet(x))


def test_retina_cnn_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    a, b, c = RetinaCNN(2, seed=1), RetinaCNN(2, seed=1), RetinaCNN(2, seed=2)
    assert torch.equal(torch.get_rng_state(), state)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_retina_cnn_regularizer_and_output_bias():
    model = RetinaCNN(2, n_lags=6, image_size=20, conv1_kernel=7, conv2_kernel=5, l2_weight=0.5)
    expected = 0.5 * sum(
        float((layer.weight.detach() ** 2).sum())
        for layer in (model.conv1, model.conv2, model.dense)
    )
    assert model.regularizer().item() == pytest.approx(expected, rel=1e-5)
    with torch.no_grad():
        for layer in (model.conv1, model.conv2, model.dense):
            layer.weight.zero_()
    assert model.regularizer().item() == 0.0
    model.initialize_output_bias(np.array([[0.2, 3.0], [0.4, 1.0]]))
    model.eval()
    out = model(torch.randn(5, 6, 20, 20))
    torch.testing.assert_close(out, torch.tensor([[0.3, 2.0]]).expand(5, 2), rtol=1e-4, atol=1e-5)


def test_retina_cnn_input_and_config_errors():
    model = RetinaCNN(2, n_lags=6, image_size=20, conv1_kernel=7, conv2_kernel=5)
    with pytest.raises(ValueError, match="make_lagged_movie"):
        model(torch.randn(2, 5, 20, 20))
    with pytest.raises(ValueError, match="too small"):
        RetinaCNN(2, image_size=20)
    with pytest.raises(ValueError, match="n_cells"):
        RetinaCNN(0)
    with pytest.raises(ValueError, match="cells"):
        model.initialize_output_bias(np.ones((4, 3)))


# ------------------------------------------------------------------------------ V1CNN
def v1_formula(n_neurons, size, c, k1, k2, k3):
    s = size - k1 + 1
    return c * k1**2 + c**2 * k2**2 + c**2 * k3**2 + 6 * c + n_neurons * (s**2 + c + 1)


@pytest.mark.parametrize(
    ("n_neurons", "size", "channels", "kernels"),
    [(100, 40, 32, (13, 3, 3)), (7, 40, 16, (13, 3, 3)), (5, 24, 8, (9, 5, 3))],
)
def test_v1_cnn_parameter_count_follows_the_formula(n_neurons, size, channels, kernels):
    model = V1CNN(n_neurons, input_size=size, channels=channels, kernel_sizes=kernels)
    assert n_params(model) == v1_formula(n_neurons, size, channels, *kernels)
    assert model(torch.randn(3, size, size)).shape == (3, n_neurons)


def test_v1_cnn_output_is_positive_and_accepts_both_layouts():
    model = V1CNN(6, seed=3)
    model.eval()
    x = torch.randn(5, 40, 40)
    out = model(x)
    assert (out > 0).all()
    torch.testing.assert_close(out, model(x[:, None]))
    with torch.no_grad():
        model.readout.bias.fill_(-8.0)  # ELU(-8 + tiny) + 1 = exp(-8)-ish, still positive
    assert (model(x) > 0).all()
    with pytest.raises(ValueError, match=r"\(N, 1, 40, 40\)"):
        model(torch.randn(2, 3, 40, 40))


def test_v1_cnn_penalties_by_hand():
    model = V1CNN(
        2,
        input_size=16,
        channels=2,
        kernel_sizes=(5, 3, 3),
        conv_smoothness=1.0,
        conv_sparsity=10.0,
        readout_sparsity=100.0,
        mask_smoothness=1000.0,
    )
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    assert model.regularizer().item() == 0.0
    with torch.no_grad():
        model.conv1.weight[0, 0, 2, 2] = 2.0  # a centred delta: roughness 10.25
    assert model.regularizer().item() == pytest.approx(LAPLACIAN_ENERGY, rel=1e-6)
    with torch.no_grad():
        model.conv1.weight.zero_()
        model.conv2.weight[1, 0, 0, 0] = 3.0
        model.conv2.weight[1, 0, 2, 1] = 4.0  # one (out, in) group with L2 norm 5
    assert model.regularizer().item() == pytest.approx(10.0 * 5.0, rel=1e-6)
    with torch.no_grad():
        model.conv2.weight.zero_()
        model.readout.mask[1].fill_(0.5)  # a constant 12 x 12 mask: L1 = 72
        model.readout.features[1] = torch.tensor([1.0, -2.0])  # L1 = 3
    # a constant map is rough only at its border (zero padding): count it by hand
    mask = np.full((12, 12), 0.5)
    padded = np.pad(mask, 1)
    kernel = np.array([[0.25, 0.5, 0.25], [0.5, -3.0, 0.5], [0.25, 0.5, 0.25]])
    filtered = np.array(
        [[(padded[i : i + 3, j : j + 3] * kernel).sum() for j in range(12)] for i in range(12)]
    )
    roughness = (filtered**2).sum() / (mask**2).sum()
    expected = 100.0 * 72.0 * 3.0 + 1000.0 * roughness
    assert model.regularizer().item() == pytest.approx(expected, rel=1e-5)


def test_v1_cnn_seeded_and_output_bias():
    a, b = V1CNN(3, seed=4), V1CNN(3, seed=4)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])
    assert not torch.equal(a.readout.mask, V1CNN(3, seed=5).readout.mask)
    with torch.no_grad():
        a.readout.features.zero_()
    a.initialize_output_bias(np.array([[0.1, 2.0, np.nan], [0.3, 4.0, 1.0]]))
    a.eval()
    out = a(torch.randn(2, 40, 40))
    torch.testing.assert_close(out[0], torch.tensor([0.2, 3.0, 1.0]), rtol=1e-5, atol=1e-6)


def test_v1_cnn_config_errors():
    with pytest.raises(ValueError, match="odd"):
        V1CNN(2, kernel_sizes=(13, 4, 3))
    with pytest.raises(ValueError, match="three entries"):
        V1CNN(2, kernel_sizes=(13, 3))
    with pytest.raises(ValueError, match="smaller than the first kernel"):
        V1CNN(2, input_size=10)
    with pytest.raises(ValueError, match="readout_sparsity"):
        V1CNN(2, readout_sparsity=-1.0)


# ------------------------------------------------------------------------------ training runs
def test_short_retina_cnn_fit_lowers_the_validation_poisson_loss():
    rng = np.random.default_rng(0)
    train_movie = rng.normal(size=(1500, 16, 16))
    val_movie = rng.normal(size=(400, 16, 16))
    rec = simulated_retina(train_movie, val_movie, n_cells=3, n_lags=8, seed=0, n_test_repeats=1)
    x_train = make_lagged_movie(train_movie.astype(np.float32), 8)
    x_val = make_lagged_movie(val_movie.astype(np.float32), 8)
    y_train = rec.train.responses[0, 7:]
    y_val = rec.test.responses[0, 7:]
    model = RetinaCNN(
        3, n_lags=8, image_size=16, conv1_channels=4, conv1_kernel=7, conv2_kernel=5, seed=0
    )
    model.initialize_output_bias(y_train)
    before = poisson_loss(predict(model, x_val), y_val)
    constant = poisson_loss(np.broadcast_to(y_train.mean(0), y_val.shape), y_val)
    history = fit(
        model,
        (x_train, y_train),
        val=(x_val, y_val),
        lr=3e-3,
        max_epochs=8,
        patience=3,
        progress=False,
    )
    after = poisson_loss(predict(model, x_val), y_val)
    assert after == pytest.approx(history.best_val_loss, rel=1e-5)
    assert after < before - 0.01
    assert after < constant - 0.01
    assert all(p > 0 for p in history.train_penalty)


def test_short_v1_cnn_fit_uses_its_regularizer_and_learns():
    rng = np.random.default_rng(1)
    images = rng.normal(size=(600, 20, 20)).astype(np.float32)
    weights = np.zeros((20, 20))
    weights[8:12, 6:14] = np.tile([1.0, -1.0], (4, 4))
    flat = images.reshape(600, -1)
    rates = np.log1p(np.exp(np.stack([flat @ weights.ravel(), flat @ weights.T.ravel()], 1) / 4))
    y = rng.poisson(rates).astype(np.float32)
    model = V1CNN(2, input_size=20, channels=4, kernel_sizes=(7, 3, 3), seed=0)
    model.initialize_output_bias(y[:500])
    before = poisson_loss(predict(model, images[500:]), y[500:])
    history = fit(
        model,
        (images[:500], y[:500]),
        val=(images[500:], y[500:]),
        lr=3e-3,
        max_epochs=15,
        progress=False,
    )
    assert all(p > 0 for p in history.train_penalty)
    assert history.best_val_loss < before - 0.02
