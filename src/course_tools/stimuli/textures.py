"""Noise textures with a power-law (1/f) amplitude spectrum.

Natural images have an amplitude spectrum that falls roughly as ``1 / f`` with spatial
frequency ``f`` (Field 1987). Giving white noise the amplitude ``|f| ** -exponent`` in the
Fourier domain produces textures with the same second-order statistics: ``exponent=1`` is
"pink" noise, ``exponent=0`` white noise, larger exponents give smoother, cloud-like textures.
An optional orientation gain concentrates power around one orientation (wood grain, grass).

White noise is drawn directly as Fourier coefficients (a complex Gaussian per coefficient of
``numpy.fft.rfft2``'s layout), which saves one FFT per image.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from course_tools.seeding import SeedLike
from course_tools.stimuli._checks import (
    check_count,
    check_positive_float,
    check_size,
    chunks,
    item_rngs,
    seed_entropy,
)

STREAM_PINK_NOISE = 5
_CHUNK = 512


@lru_cache(maxsize=16)
def frequency_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Radial frequency and orientation of the ``rfft2`` coefficients of a square image.

    Parameters
    ----------
    size : int
        Image side length in pixels.

    Returns
    -------
    radius : ndarray, shape (size, size // 2 + 1), float32
        Spatial frequency in cycles per image (0 at the DC coefficient).
    angle : ndarray, shape (size, size // 2 + 1), float32
        Orientation of each frequency in radians.
    """
    fy = np.fft.fftfreq(size) * size
    fx = np.fft.rfftfreq(size) * size
    radius = np.hypot(fy[:, None], fx[None, :]).astype(np.float32)
    angle = np.arctan2(fy[:, None], fx[None, :]).astype(np.float32)
    radius.flags.writeable = False  # cached: shared between calls
    angle.flags.writeable = False
    return radius, angle


def white_spectrum(rng: np.random.Generator, size: int) -> np.ndarray:
    """Fourier coefficients of one white-noise image, in ``rfft2`` layout.

    Parameters
    ----------
    rng : numpy.random.Generator
    size : int
        Side length of the (square) image the coefficients describe.

    Returns
    -------
    ndarray, shape (size, size // 2 + 1), complex64
    """
    parts = rng.standard_normal((2, size, size // 2 + 1), dtype=np.float32)
    return parts[0] + 1j * parts[1]


def power_law_noise(
    spectra: np.ndarray,
    exponent: np.ndarray | float,
    *,
    size: int | None = None,
    orientation: np.ndarray | float = 0.0,
    orientation_strength: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Turn white Fourier coefficients into textures with amplitude spectrum ``|f| ** -exponent``.

    Parameters
    ----------
    spectra : ndarray, shape (n, m, m // 2 + 1), complex
        White-noise coefficients (:func:`white_spectrum`) of ``m`` x ``m`` images.
    exponent : float or ndarray, shape (n,)
        Amplitude-spectrum exponent per image (1 gives 1/f "pink" noise).
    size : int, optional
        Output side length, ``>= m`` (default ``m``). A larger size keeps only the ``m`` lowest
        frequencies per axis: a smooth texture for the price of a small spectrum.
    orientation : float or ndarray, shape (n,)
        Preferred orientation of the texture's frequency content, radians.
    orientation_strength : float or ndarray, shape (n,)
        Concentration of a von Mises gain around ``orientation`` (0: isotropic).

    Returns
    -------
    ndarray, shape (n, size, size), float32
        Zero-mean, unit-variance textures.
    """
    n, m = spectra.shape[0], spectra.shape[1]
    size = m if size is None else size
    radius, angle = frequency_grid(m)
    radius = radius.copy()
    radius[0, 0] = 1.0
    exponent = np.broadcast_to(np.asarray(exponent, dtype=np.float32), (n,))
    gain = np.exp(-exponent[:, None, None] * np.log(radius)[None])
    strength = np.broadcast_to(np.asarray(orientation_strength, dtype=np.float32), (n,))
    if np.any(strength > 0):
        preferred = np.broadcast_to(np.asarray(orientation, dtype=np.float32), (n,))
        cos_term = np.cos(2 * angle)[None] * np.cos(2 * preferred)[:, None, None]
        sin_term = np.sin(2 * angle)[None] * np.sin(2 * preferred)[:, None, None]
        gain *= np.exp(strength[:, None, None] * (cos_term + sin_term - 1.0))
    gain[:, 0, 0] = 0.0
    shaped = (spectra * gain).astype(np.complex64)
    if size != m:
        shaped = _embed_low_frequencies(shaped, size)
    texture = np.fft.irfft2(shaped, s=(size, size)).astype(np.float32, copy=False)
    texture -= texture.mean(axis=(1, 2), keepdims=True)
    texture /= texture.std(axis=(1, 2), keepdims=True) + np.float32(1e-12)
    return texture


def _embed_low_frequencies(spectra: np.ndarray, size: int) -> np.ndarray:
    """Place ``m``-image coefficients into the low-frequency corner of a ``size``-image layout."""
    n, m = spectra.shape[0], spectra.shape[1]
    half = m // 2
    big = np.zeros((n, size, size // 2 + 1), dtype=spectra.dtype)
    big[:, :half, : half + 1] = spectra[:, :half, : half + 1]
    big[:, size - half :, : half + 1] = spectra[:, m - half :, : half + 1]
    return big


def pink_noise(n: int, *, size: int = 64, exponent: float = 1.0, seed: SeedLike = 0) -> np.ndarray:
    """Gaussian noise images whose amplitude spectrum falls as ``1 / f ** exponent``.

    Parameters
    ----------
    n : int
        Number of images.
    size : int
        Side length in pixels (at least 4).
    exponent : float
        Amplitude-spectrum exponent: 1 for natural-image-like pink noise, 0 for white noise.
    seed : int, numpy.random.Generator or None
        Image ``i`` depends only on ``(seed, i)``, not on ``n``.

    Returns
    -------
    ndarray, shape (n, size, size), float32
        Each image has zero mean and unit standard deviation.

    Examples
    --------
    >>> pink_noise(3, size=32).shape
    (3, 32, 32)
    """
    n = check_count(n, "n")
    size = check_size(size, "size", 4)
    exponent = check_positive_float(exponent, "exponent", allow_zero=True)
    entropy = seed_entropy(seed)
    out = np.empty((n, size, size), dtype=np.float32)
    for start, stop in chunks(n, _CHUNK):
        rngs = item_rngs(entropy, STREAM_PINK_NOISE, start, stop)
        spectra = np.stack([white_spectrum(rng, size) for rng in rngs])
        out[start:stop] = power_law_noise(spectra, exponent)
    return out
