"""Plausible wrong answers for the ``retina_cnn`` assignment (instructor only)."""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from course_tools.grading import Mutant


# --------------------------------------------------------------------------------------------
# part 1: spike-triggered average
# --------------------------------------------------------------------------------------------
def _sta(movie, counts, n_lags, shift=0):
    movie = np.asarray(movie, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    start = n_lags - 1 + shift
    valid = counts[start:]
    sta = np.zeros((n_lags, *movie.shape[1:]))
    for lag in range(n_lags):
        offset = lag + shift
        sta[lag] = np.tensordot(valid, movie[start - offset : len(movie) - offset], axes=1)
    return sta, valid


def sta_chronological(movie, counts, n_lags):
    """Returns the STA oldest frame first (the CNN's chronological order), not in lag order."""
    sta, valid = _sta(movie, counts, n_lags)
    return (sta / valid.sum())[::-1]


def sta_wraparound(movie, counts, n_lags):
    """Shifts the movie with np.roll and averages over every bin, wrapping the start around."""
    movie = np.asarray(movie, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    sta = np.stack(
        [np.tensordot(counts, np.roll(movie, lag, axis=0), axes=1) for lag in range(n_lags)]
    )
    return sta / counts.sum()


def sta_divided_by_bins(movie, counts, n_lags):
    """Divides by the number of bins instead of the number of spikes."""
    sta, valid = _sta(movie, counts, n_lags)
    return sta / len(valid)


def sta_off_by_one(movie, counts, n_lags):
    """Lag l takes the frame l + 1 bins before the response (sta[0] is already in the past)."""
    sta, valid = _sta(movie, counts, n_lags, shift=1)
    return sta / valid.sum()


# --------------------------------------------------------------------------------------------
# part 2: nonlinearity
# --------------------------------------------------------------------------------------------
def nonlinearity_unsorted(generator, counts, n_bins=20):
    """Splits the samples in time order instead of sorting them by generator value."""
    generator = np.asarray(generator, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    groups = np.array_split(np.arange(len(generator)), n_bins)
    return (
        np.array([generator[g].mean() for g in groups]),
        np.array([counts[g].mean() for g in groups]),
    )


def nonlinearity_equal_width(generator, counts, n_bins=20):
    """Equal-width bins of the generator range instead of equal-count (quantile) bins."""
    generator = np.asarray(generator, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.linspace(generator.min(), generator.max(), n_bins + 1)
    which = np.clip(np.digitize(generator, edges) - 1, 0, n_bins - 1)
    used = [b for b in range(n_bins) if np.any(which == b)]
    return (
        np.array([generator[which == b].mean() for b in used]),
        np.array([counts[which == b].mean() for b in used]),
    )


def nonlinearity_summed_counts(generator, counts, n_bins=20):
    """Sums the counts of each bin instead of averaging them."""
    generator = np.asarray(generator, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    groups = np.array_split(np.argsort(generator), n_bins)
    return (
        np.array([generator[g].mean() for g in groups]),
        np.array([counts[g].sum() for g in groups]),
    )


# --------------------------------------------------------------------------------------------
# part 3: the CNN
# --------------------------------------------------------------------------------------------
class _Layers(nn.Module):
    def __init__(self, n_cells, n_lags=40, image_size=50, noise_std=0.1, padding=0):
        super().__init__()
        self.noise_std = noise_std
        self.conv1 = nn.Conv2d(n_lags, 8, kernel_size=15, padding=7 if padding else 0)
        self.conv2 = nn.Conv2d(8, 8, kernel_size=11, padding=5 if padding else 0)
        side = image_size if padding else image_size - 15 + 1 - 11 + 1
        self.dense = nn.Linear(8 * side * side, n_cells)

    def add_noise(self, x):
        if self.training and self.noise_std > 0:
            return x + self.noise_std * torch.randn_like(x)
        return x


class CNNWithoutReLU(_Layers):
    """Leaves out the ReLUs: the two convolutions collapse into one linear filter."""

    def forward(self, x):
        x = self.add_noise(self.conv2(self.add_noise(self.conv1(x))))
        return F.softplus(self.dense(x.flatten(start_dim=1)))


class CNNExpOutput(_Layers):
    """Ends with exp instead of softplus."""

    def forward(self, x):
        x = torch.relu(self.add_noise(self.conv1(x)))
        x = torch.relu(self.add_noise(self.conv2(x)))
        return torch.exp(self.dense(x.flatten(start_dim=1)))


class CNNSamePadding(_Layers):
    """Pads the convolutions ('same') instead of the published valid convolutions."""

    def __init__(self, n_cells, n_lags=40, image_size=50, noise_std=0.1):
        super().__init__(n_cells, n_lags, image_size, noise_std, padding=1)

    def forward(self, x):
        x = torch.relu(self.add_noise(self.conv1(x)))
        x = torch.relu(self.add_noise(self.conv2(x)))
        return F.softplus(self.dense(x.flatten(start_dim=1)))


class CNNNoiseInEval(_Layers):
    """Adds the noise in evaluation mode too."""

    def add_noise(self, x):
        return x + self.noise_std * torch.randn_like(x)

    def forward(self, x):
        x = torch.relu(self.add_noise(self.conv1(x)))
        x = torch.relu(self.add_noise(self.conv2(x)))
        return F.softplus(self.dense(x.flatten(start_dim=1)))


class CNNWithoutNoise(_Layers):
    """Never adds the training noise."""

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        return F.softplus(self.dense(x.flatten(start_dim=1)))


# --------------------------------------------------------------------------------------------
# part 4: the loss
# --------------------------------------------------------------------------------------------
def poisson_as_mse(rate, counts, eps=1e-8):
    """Mean squared error instead of the Poisson negative log-likelihood."""
    return ((rate - counts) ** 2).mean()


def poisson_summed(rate, counts, eps=1e-8):
    """Sums over bins and cells instead of averaging."""
    return (rate - counts * torch.log(rate + eps)).sum()


def poisson_without_eps(rate, counts, eps=1e-8):
    """Takes log(rate) without eps: a zero rate with zero spikes gives nan."""
    return (rate - counts * torch.log(rate)).mean()


def poisson_log_likelihood(rate, counts, eps=1e-8):
    """Returns the log-likelihood (to be maximised) instead of its negative."""
    return (counts * torch.log(rate + eps) - rate).mean()


# --------------------------------------------------------------------------------------------
# part 5: training
# --------------------------------------------------------------------------------------------
def train_without_step(model, inputs, targets, *, n_epochs=3, batch_size=64, lr=1e-3, seed=0):
    """Computes losses and gradients but never calls optimizer.step(): nothing is learned."""
    torch.manual_seed(seed)
    order_generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    targets = torch.as_tensor(np.asarray(targets), dtype=torch.float32)
    epoch_losses = []
    model.train()
    for _ in range(n_epochs):
        order = torch.randperm(len(targets), generator=order_generator).numpy()
        total = 0.0
        for start in range(0, len(order), batch_size):
            index = np.sort(order[start : start + batch_size])
            batch = torch.as_tensor(np.asarray(inputs[index]), dtype=torch.float32)
            rate = model(batch)
            loss = (rate - targets[index] * torch.log(rate + 1e-8)).mean()
            optimizer.zero_grad()
            loss.backward()
            total += loss.item() * len(index)
        epoch_losses.append(total / len(order))
    model.eval()
    return epoch_losses


# --------------------------------------------------------------------------------------------
# part 6: the score
# --------------------------------------------------------------------------------------------
def _pearson_columns(a, b):
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    return (a * b).sum(axis=0) / np.sqrt((a**2).sum(axis=0) * (b**2).sum(axis=0))


def r_single_trials(predictions, responses):
    """Averages the r of each single trial instead of correlating with the trial average."""
    predictions = np.asarray(predictions, dtype=np.float64)
    responses = np.asarray(responses, dtype=np.float64)
    return np.mean([_pearson_columns(predictions, trial) for trial in responses], axis=0)


def r_pooled_trials(predictions, responses):
    """Correlates the prediction with all single trials stacked end to end."""
    predictions = np.asarray(predictions, dtype=np.float64)
    responses = np.asarray(responses, dtype=np.float64)
    stacked = responses.reshape(-1, responses.shape[-1])
    return _pearson_columns(np.tile(predictions, (len(responses), 1)), stacked)


def r_across_cells(predictions, responses):
    """Correlates across cells within each bin (the wrong axis)."""
    predictions = np.asarray(predictions, dtype=np.float64)
    average = np.asarray(responses, dtype=np.float64).mean(axis=0)
    return _pearson_columns(predictions.T, average.T)


MUTANTS = [
    Mutant(
        name="sta_chronological",
        description="STA returned oldest frame first (time axis flipped)",
        replacements={"spike_triggered_average": sta_chronological},
        must_fail=["test_sta_visible", "test_sta_hidden"],
    ),
    Mutant(
        name="sta_wraparound",
        description="STA over every bin with np.roll, so the first bins see the movie's end",
        replacements={"spike_triggered_average": sta_wraparound},
        must_fail=["test_sta_visible", "test_sta_hidden"],
    ),
    Mutant(
        name="sta_divided_by_bins",
        description="STA divided by the number of bins instead of the number of spikes",
        replacements={"spike_triggered_average": sta_divided_by_bins},
        must_fail=["test_sta_hidden"],
    ),
    Mutant(
        name="sta_off_by_one",
        description="STA lag l taken l + 1 bins before the response",
        replacements={"spike_triggered_average": sta_off_by_one},
        must_fail=["test_sta_visible", "test_sta_hidden"],
    ),
    Mutant(
        name="nonlinearity_unsorted",
        description="nonlinearity groups in time order instead of sorted by generator value",
        replacements={"fit_nonlinearity": nonlinearity_unsorted},
        must_fail=["test_nonlinearity"],
    ),
    Mutant(
        name="nonlinearity_equal_width",
        description="nonlinearity with equal-width bins instead of equal-count bins",
        replacements={"fit_nonlinearity": nonlinearity_equal_width},
        must_fail=["test_nonlinearity"],
    ),
    Mutant(
        name="nonlinearity_summed_counts",
        description="nonlinearity values are summed counts, not mean counts",
        replacements={"fit_nonlinearity": nonlinearity_summed_counts},
        must_fail=["test_nonlinearity"],
    ),
    Mutant(
        name="cnn_without_relu",
        description="CNN without the ReLUs (a linear stack)",
        replacements={"McIntoshCNN": CNNWithoutReLU},
        must_fail=["test_cnn_hidden"],
    ),
    Mutant(
        name="cnn_exp_output",
        description="CNN ends with exp instead of softplus",
        replacements={"McIntoshCNN": CNNExpOutput},
        must_fail=["test_cnn_hidden"],
    ),
    Mutant(
        name="cnn_same_padding",
        description="CNN with padded ('same') instead of valid convolutions",
        replacements={"McIntoshCNN": CNNSamePadding},
        must_fail=["test_cnn_visible", "test_cnn_hidden"],
    ),
    Mutant(
        name="cnn_noise_in_eval",
        description="CNN adds the Gaussian noise in evaluation mode too",
        replacements={"McIntoshCNN": CNNNoiseInEval},
        must_fail=["test_cnn_hidden"],
    ),
    Mutant(
        name="cnn_without_noise",
        description="CNN never adds the training noise",
        replacements={"McIntoshCNN": CNNWithoutNoise},
        must_fail=["test_cnn_hidden"],
    ),
    Mutant(
        name="poisson_as_mse",
        description="mean squared error instead of the Poisson loss",
        replacements={"poisson_nll": poisson_as_mse},
        must_fail=["test_poisson_visible", "test_poisson_hidden"],
    ),
    Mutant(
        name="poisson_summed",
        description="Poisson loss summed instead of averaged",
        replacements={"poisson_nll": poisson_summed},
        must_fail=["test_poisson_visible", "test_poisson_hidden"],
    ),
    Mutant(
        name="poisson_without_eps",
        description="log(rate) without eps: nan for a zero rate",
        replacements={"poisson_nll": poisson_without_eps},
        must_fail=["test_poisson_hidden"],
    ),
    Mutant(
        name="poisson_log_likelihood",
        description="returns the log-likelihood instead of its negative",
        replacements={"poisson_nll": poisson_log_likelihood},
        must_fail=["test_poisson_visible", "test_poisson_hidden"],
    ),
    Mutant(
        name="train_without_step",
        description="training loop that never calls optimizer.step()",
        replacements={"train_cnn": train_without_step},
        must_fail=["test_training_hidden"],
    ),
    Mutant(
        name="r_single_trials",
        description="r computed on single trials and averaged",
        replacements={"trial_averaged_r": r_single_trials},
        must_fail=["test_r_hidden"],
    ),
    Mutant(
        name="r_pooled_trials",
        description="r between the prediction and all single trials stacked",
        replacements={"trial_averaged_r": r_pooled_trials},
        must_fail=["test_r_hidden"],
    ),
    Mutant(
        name="r_across_cells",
        description="r computed across cells instead of across time bins",
        replacements={"trial_averaged_r": r_across_cells},
        must_fail=["test_r_hidden"],
    ),
]
