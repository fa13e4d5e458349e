"""The shared training loop against torch's loss, sklearn's Poisson GLM and hand computations."""

import copy
import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import PoissonRegressor
from torch import nn
from torch.utils.data import TensorDataset

from course_tools.models.training import TrainingHistory, fit, poisson_loss, predict


@pytest.fixture(autouse=True)
def _small_models_on_one_thread():
    """These tiny models run fastest on one thread (and do not spin against other processes)."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(n_threads)


class ExpGLM(nn.Module):
    """rate = exp(x w + b): a Poisson GLM with the canonical link."""

    def __init__(self, n_in: int, n_out: int = 1):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)

    def forward(self, x):
        return torch.exp(self.linear(x))


class NoisyLinear(nn.Module):
    """A linear model with a random layer, to test the seeding of training-time noise."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        return self.linear(self.dropout(x))


def _glm_data(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    w = np.array([0.5, -0.4, 0.25])
    y = rng.poisson(np.exp(x @ w + 0.3)).astype(np.float32)[:, None]
    return x, y, w


# ------------------------------------------------------------------------------ poisson_loss
def test_poisson_loss_equals_torch_poisson_nll():
    gen = torch.Generator().manual_seed(0)
    pred = torch.rand(50, 7, generator=gen) * 3
    target = torch.poisson(torch.rand(50, 7, generator=gen) * 3, generator=gen)
    reference = nn.PoissonNLLLoss(log_input=False, full=False)(pred, target)
    # A float32 mean over 350 terms, possibly summed in another order: ~1e-6 relative apart.
    assert torch.allclose(poisson_loss(pred, target), reference, rtol=1e-5)


def test_poisson_loss_by_hand():
    # mean of [1 - 0 * log(1), 2 - 3 * log(2), 0.5 - 1 * log(0.5)]
    expected = (1.0 + (2.0 - 3.0 * math.log(2.0)) + (0.5 - math.log(0.5))) / 3
    value = poisson_loss(np.array([1.0, 2.0, 0.5]), np.array([0.0, 3.0, 1.0]))
    assert isinstance(value, float)
    assert value == pytest.approx(expected, rel=1e-7)


def test_poisson_loss_ignores_nan_targets_when_asked():
    pred = torch.tensor([[1.0, 2.0], [0.5, 4.0]])
    target = torch.tensor([[0.0, float("nan")], [1.0, 2.0]])
    observed = [1.0 - 0.0, 0.5 - math.log(0.5), 4.0 - 2.0 * math.log(4.0)]
    value = poisson_loss(pred, target, ignore_nan=True)
    assert float(value) == pytest.approx(np.mean(observed), rel=1e-6)
    assert torch.isnan(poisson_loss(pred, target))


def test_poisson_loss_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        poisson_loss(torch.ones(3, 2), torch.ones(3))


# ------------------------------------------------------------------------------- fitting
def test_fit_recovers_glm_weights_like_sklearn():
    x, y, w = _glm_data()
    model = ExpGLM(3)
    with torch.no_grad():
        model.linear.weight.zero_()
        model.linear.bias.zero_()
    # full-batch Adam, validated on the training data itself: the maximum-likelihood fit that
    # sklearn computes with L-BFGS
    history = fit(
        model,
        (x, y),
        val=(x, y),
        lr=0.05,
        batch_size=len(x),
        max_epochs=400,
        patience=20,
        progress=False,
    )
    assert history.train_loss[-1] < 0.8 * history.train_loss[0]
    fitted = model.linear.weight.detach().numpy().ravel()
    reference = PoissonRegressor(alpha=0.0, max_iter=1000, tol=1e-8).fit(x, y.ravel())
    np.testing.assert_allclose(fitted, w, atol=0.06)
    np.testing.assert_allclose(fitted, reference.coef_, atol=0.005)
    assert model.linear.bias.item() == pytest.approx(reference.intercept_, abs=0.005)


def test_fit_is_deterministic_per_seed_whatever_the_global_state():
    x, y, _ = _glm_data(500)
    y2 = np.concatenate([y, y], axis=1)
    template = NoisyLinear()

    def run(seed, global_seed):
        torch.manual_seed(global_seed)
        model = copy.deepcopy(template)
        fit(model, (x, y2), loss="mse", seed=seed, max_epochs=3, progress=False)
        return model.linear.weight.detach().clone()

    first, again, other_global = run(1, 0), run(1, 0), run(1, 123)
    assert torch.equal(first, again)
    assert torch.equal(first, other_global)
    assert not torch.equal(first, run(2, 0))


def test_fit_leaves_the_global_torch_rng_alone():
    x, y, _ = _glm_data(200)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    fit(NoisyLinear(), (x, np.concatenate([y, y], 1)), loss="mse", max_epochs=2, progress=False)
    # NoisyLinear() above drew from the global RNG; compare to a fresh draw of the same kind
    torch.set_rng_state(state)
    NoisyLinear()
    expected = torch.get_rng_state()
    torch.set_rng_state(state)
    NoisyLinear()
    assert torch.equal(torch.get_rng_state(), expected)


def test_early_stopping_restores_the_best_epoch():
    # Training pulls the weight towards 1, validation wants 0: validation loss rises from the
    # first epoch on, so the best epoch is 0 and training stops after `patience` more epochs.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 1)).astype(np.float32)
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    history = fit(
        model,
        (x, x.copy()),
        val=(x, np.zeros_like(x)),
        loss="mse",
        lr=0.05,
        batch_size=32,
        max_epochs=20,
        patience=3,
        progress=False,
    )
    assert history.best_epoch == int(np.argmin(history.val_loss)) == 0
    assert history.n_epochs == 4
    assert history.stopped_early
    w = model.weight.item()
    assert 0 < w < 1
    # the restored weights give exactly the recorded best validation loss (MSE = w^2 mean x^2)
    assert history.best_val_loss == pytest.approx(w**2 * float(np.mean(x**2)), rel=1e-5)


def test_without_validation_trains_all_epochs():
    x, y, _ = _glm_data(300)
    history = fit(ExpGLM(3), (x, y), val_fraction=0.0, max_epochs=4, progress=True)
    assert history.n_epochs == 4
    assert history.best_epoch == 3
    assert all(np.isnan(history.val_loss))
    assert math.isnan(history.best_val_loss)
    assert history.elapsed_seconds > 0
    frame = history.to_frame()
    assert list(frame.columns) == ["epoch", "train_loss", "val_loss", "train_penalty"]
    assert len(frame) == 4


def test_validation_split_is_a_seeded_fraction():
    x, y, _ = _glm_data(200)
    template = ExpGLM(3)

    def run(seed):
        return fit(
            copy.deepcopy(template),
            (x, y),
            val_fraction=0.25,
            max_epochs=1,
            seed=seed,
            progress=False,
        )

    a = run(3)
    assert isinstance(a, TrainingHistory)
    assert a.val_loss == run(3).val_loss
    assert a.val_loss != run(4).val_loss


def test_torch_dataset_input_trains():
    x, y, w = _glm_data(1000)
    data = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    model = ExpGLM(3)
    history = fit(model, data, lr=0.05, max_epochs=15, progress=False)
    assert history.n_epochs >= 2
    np.testing.assert_allclose(model.linear.weight.detach().numpy().ravel(), w, atol=0.15)


def test_dataset_targets_are_cast_for_the_loss():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    labels = (x[:, 0] > 0).astype(np.float64)  # float labels from a Dataset: cast to long
    data = TensorDataset(torch.from_numpy(x), torch.from_numpy(labels))
    model = nn.Linear(2, 2)
    fit(model, data, loss="cross_entropy", lr=0.05, max_epochs=5, progress=False)
    assert (predict(model, x.astype(np.float32)).argmax(1) == labels).mean() > 0.9


def test_cross_entropy_learns_a_separable_problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 2)).astype(np.float32)
    labels = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = nn.Linear(2, 2)
    fit(model, (x, labels), loss="cross_entropy", lr=0.05, max_epochs=10, progress=False)
    accuracy = (predict(model, x).argmax(1) == labels).mean()
    assert accuracy > 0.95


def test_nan_targets_are_left_out_of_the_loss():
    x, y, _ = _glm_data(400)
    y2 = np.concatenate([y, y], 1)
    y2[::3, 1] = np.nan
    model = ExpGLM(3, 2)
    history = fit(model, (x, y2), lr=0.05, max_epochs=20, progress=False)
    assert np.isfinite(history.train_loss).all()
    weights = model.linear.weight.detach().numpy()
    np.testing.assert_allclose(weights[0], weights[1], atol=0.1)


def test_regularizer_hook_and_auto_detection():
    class Penalised(ExpGLM):
        def regularizer(self):
            return 0.1 * self.linear.weight.pow(2).sum()

    x, y, _ = _glm_data(300)
    auto = fit(Penalised(3), (x, y), max_epochs=2, progress=False)
    assert all(p > 0 for p in auto.train_penalty)
    off = fit(Penalised(3), (x, y), max_epochs=2, regularizer=None, progress=False)
    assert off.train_penalty == [0.0, 0.0]
    custom = fit(
        ExpGLM(3),
        (x, y),
        max_epochs=2,
        regularizer=lambda m: m.linear.bias.abs().sum() + 1.0,
        progress=False,
    )
    assert all(p >= 1.0 for p in custom.train_penalty)


def test_shrinking_penalty_pulls_weights_to_zero():
    x, y, _ = _glm_data(1000)
    free, shrunk = ExpGLM(3), ExpGLM(3)
    shrunk.load_state_dict(free.state_dict())
    fit(free, (x, y), lr=0.05, max_epochs=20, regularizer=None, progress=False)
    fit(
        shrunk,
        (x, y),
        lr=0.05,
        max_epochs=20,
        regularizer=lambda m: 1.0 * m.linear.weight.pow(2).sum(),
        progress=False,
    )
    assert shrunk.linear.weight.norm() < 0.7 * free.linear.weight.norm()


def test_predict_returns_numpy_in_batches_and_restores_mode():
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5))
    model.train()
    x = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
    out = predict(model, x, batch_size=3)
    assert isinstance(out, np.ndarray) and out.shape == (10, 4)
    model.eval()
    with torch.no_grad():
        # float32 outputs of a 3-term dot product plus bias: batched and whole-matrix BLAS paths
        # may sum in another order (a few ulps, eps = 1.2e-7), and outputs cross zero, so the
        # tolerance is relative to the outputs' scale, not to each output.
        whole = model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(out, whole, rtol=1e-5, atol=1e-5 * np.abs(whole).max())
    model.train()
    predict(model, x)
    assert model.training


# ------------------------------------------------------------------------------- errors
def test_mismatched_lengths_are_a_clear_error():
    x, y, _ = _glm_data(100)
    with pytest.raises(ValueError, match="100 inputs and 99 targets"):
        fit(ExpGLM(3), (x, y[:99]), progress=False)
    with pytest.raises(ValueError, match="val inputs and targets"):
        fit(ExpGLM(3), (x, y), val=(x[:10], y[:9]), progress=False)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"loss": "huber"}, ValueError, "loss must be one of"),
        ({"optimizer": "rmsprop"}, ValueError, "optimizer must be one of"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"max_epochs": 2.5}, ValueError, "max_epochs"),
        ({"patience": 0}, ValueError, "patience"),
        ({"val_fraction": 1.0}, ValueError, "val_fraction"),
        ({"lr": 0.0}, ValueError, "lr must be positive"),
        ({"seed": -1}, ValueError, "seed"),
        ({"regularizer": "l2"}, ValueError, "regularizer"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, error, match):
    x, y, _ = _glm_data(100)
    with pytest.raises(error, match=match):
        fit(ExpGLM(3), (x, y), progress=False, **kwargs)


def test_bad_model_and_data_types():
    x, y, _ = _glm_data(100)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        fit(lambda t: t, (x, y), progress=False)
    with pytest.raises(TypeError, match="pair"):
        fit(ExpGLM(3), (x, y, y), progress=False)
    with pytest.raises(TypeError, match="numeric"):
        fit(ExpGLM(3), (np.array(["a"] * 100), y), progress=False)


def test_poisson_needs_non_negative_predictions_and_targets():
    x, y, _ = _glm_data(100)
    with pytest.raises(ValueError, match="non-negative predictions"):
        fit(nn.Linear(3, 1), (x, y - 100), progress=False)
    with pytest.raises(ValueError, match="non-negative targets"):
        fit(ExpGLM(3), (x, y - 100), progress=False)


def test_output_shape_mismatch_is_a_clear_error():
    x, y, _ = _glm_data(100)
    with pytest.raises(ValueError, match="one output per target"):
        fit(ExpGLM(3, 2), (x, y), progress=False)
    with pytest.raises(ValueError, match="cross_entropy"):
        fit(nn.Linear(3, 2), (x, y), loss="cross_entropy", progress=False)


def test_nan_inputs_and_diverging_loss_are_reported():
    x, y, _ = _glm_data(100)
    bad = x.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        fit(ExpGLM(3), (bad, y), val_fraction=0.0, progress=False)
    with pytest.raises(FloatingPointError, match="training loss became nan"):
        fit(ExpGLM(3), (x, y), loss=lambda p, t: (p * float("nan")).mean(), progress=False)
