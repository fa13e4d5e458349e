"""Trial-to-trial variability shared by the simulated populations.

Each trial's count is Poisson with the neuron's rate scaled by a gamma-distributed gain of mean 1
and standard deviation ``gain_sd`` (a negative-binomial count, overdispersed like cortical
responses). The variance of a trial is therefore ``rate + gain_sd**2 * rate**2``, which gives the
ground-truth explainable fraction of every neuron in closed form.
"""

from __future__ import annotations

import numpy as np


def gamma_poisson_trials(
    rates: np.ndarray, gain_sd: np.ndarray, n_repeats: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Single-trial counts with multiplicative gamma gain noise, and their true statistics.

    Parameters
    ----------
    rates : ndarray, shape (n_images, n_neurons)
        Mean count of each neuron to each image.
    gain_sd : ndarray, shape (n_neurons,)
        Standard deviation of each neuron's trial gain (0: pure Poisson).
    n_repeats : int
    rng : numpy.random.Generator
        Draws the gains (for neurons with ``gain_sd > 0``), then the counts.

    Returns
    -------
    responses : ndarray, shape (n_repeats, n_images, n_neurons)
        Counts as float64.
    noise_variance : ndarray, shape (n_neurons,)
        True trial-to-trial variance averaged over images, ``mean(rate + gain_sd**2 rate**2)``.
    fev : ndarray, shape (n_neurons,)
        True explainable fraction of a single trial's variance,
        ``var(rates) / (var(rates) + noise_variance)``.
    """
    n_images, n_neurons = rates.shape
    gains = np.ones((int(n_repeats), n_images, n_neurons))
    noisy = gain_sd > 0
    if noisy.any():
        k = 1.0 / gain_sd[noisy] ** 2
        gains[..., noisy] = rng.gamma(k, 1.0 / k, size=(int(n_repeats), n_images, int(noisy.sum())))
    responses = rng.poisson(gains * rates[None]).astype(np.float64)

    noise_variance = np.mean(rates + gain_sd**2 * rates**2, axis=0)
    signal_variance = rates.var(axis=0)
    fev = signal_variance / (signal_variance + noise_variance)
    return responses, noise_variance, fev
