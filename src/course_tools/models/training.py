"""One short training loop for every network of the course.

:func:`fit` trains a :class:`torch.nn.Module` on ``(inputs, targets)`` with mini-batches, keeps a
validation split aside, stops early when the validation loss stops improving and restores the
weights of the best epoch. The system-identification CNNs (:mod:`course_tools.models.sysid`) and
the task-trained networks use it alike; :func:`predict` runs a trained network over many inputs.

Determinism: with the same ``seed`` and the same initial weights, :func:`fit` returns the same
weights, whatever the global random state is before the call (the split, the batch order and any
random layers such as noise or dropout draw from streams seeded by ``seed``; the caller's global
torch random state is left untouched).

Losses
------
``"poisson"``
    Mean of ``pred - target * log(pred + eps)``: the negative Poisson log-likelihood up to a term
    that does not depend on the prediction, as :class:`torch.nn.PoissonNLLLoss` with
    ``log_input=False, full=False``. Predictions must be non-negative rates (end the network with
    softplus, ELU + 1 or exp).
``"mse"``
    Mean squared error.
``"cross_entropy"``
    :func:`torch.nn.functional.cross_entropy` on logits ``(n, n_classes)`` and integer class
    labels ``(n,)``.

For ``"poisson"`` and ``"mse"`` a NaN target (a neuron not recorded for that stimulus) is left out
of the mean instead of poisoning it.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

__all__ = ["LOSSES", "TrainingHistory", "fit", "poisson_loss", "predict"]

LOSSES = ("poisson", "mse", "cross_entropy")
_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}

LossLike = str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
DataLike = tuple | list | Dataset


@dataclass
class TrainingHistory:
    """What happened during :func:`fit`.

    Attributes
    ----------
    train_loss : list of float, length n_epochs
        Mean data loss over the training batches of each epoch (without the regularizer).
    val_loss : list of float, length n_epochs
        Data loss on the validation split after each epoch (NaN when there is no validation split).
    train_penalty : list of float, length n_epochs
        Mean regularizer value over the batches of each epoch (0 without a regularizer).
    best_epoch : int
        Index into the lists of the epoch whose weights the model holds after :func:`fit`.
    best_val_loss : float
        ``val_loss[best_epoch]`` (NaN without a validation split).
    stopped_early : bool
        True when training stopped because the validation loss did not improve for
        ``patience`` epochs, before ``max_epochs``.
    elapsed_seconds : float
        Wall-clock time of the whole call.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_penalty: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.nan
    stopped_early: bool = False
    elapsed_seconds: float = 0.0

    @property
    def n_epochs(self) -> int:
        """Number of epochs that ran."""
        return len(self.train_loss)

    def to_frame(self) -> pd.DataFrame:
        """One row per epoch with columns ``epoch, train_loss, val_loss, train_penalty``."""
        return pd.DataFrame(
            {
                "epoch": np.arange(self.n_epochs),
                "train_loss": self.train_loss,
                "val_loss": self.val_loss,
                "train_penalty": self.train_penalty,
            }
        )


# --------------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------------
def poisson_loss(pred, target, *, eps: float = 1e-8, ignore_nan: bool = False):
    """Mean Poisson negative log-likelihood ``pred - target * log(pred + eps)``.

    Identical to ``torch.nn.PoissonNLLLoss(log_input=False, full=False, eps=eps)``; the dropped
    term ``log(target!)`` does not depend on the prediction.

    Parameters
    ----------
    pred : tensor or array_like, shape (n_samples, ...)
        Predicted non-negative rates (expected counts per bin).
    target : tensor or array_like, same shape as ``pred``
        Observed counts (or trial-averaged counts).
    eps : float
        Added inside the log so that a zero prediction stays finite.
    ignore_nan : bool
        If True, elements whose target is NaN are left out of the mean.

    Returns
    -------
    torch.Tensor (scalar) if ``pred`` is a tensor, else float
    """
    as_float = not isinstance(pred, torch.Tensor)
    pred_t = torch.from_numpy(np.array(pred, dtype=np.float64)) if as_float else pred
    if not isinstance(target, torch.Tensor):
        target = torch.from_numpy(np.array(target, dtype=np.float64))
    target_t = target.to(dtype=pred_t.dtype, device=pred_t.device)
    if pred_t.shape != target_t.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred_t.shape)} and "
            f"{tuple(target_t.shape)}."
        )
    if ignore_nan:
        observed = ~torch.isnan(target_t)
        filled = torch.where(observed, target_t, torch.zeros_like(target_t))  # NaN-free grads
        value = _masked_mean(pred_t - filled * torch.log(pred_t + eps), observed)
    else:
        value = (pred_t - target_t * torch.log(pred_t + eps)).mean()
    return float(value) if as_float else value


def _masked_mean(elementwise: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Mean of ``elementwise`` over the ``observed`` entries (``elementwise`` must be finite)."""
    if bool(observed.all()):
        return elementwise.mean()
    total = torch.where(observed, elementwise, torch.zeros_like(elementwise)).sum()
    return total / observed.sum().clamp(min=1)


def _mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    observed = ~torch.isnan(target)
    filled = torch.where(observed, target, torch.zeros_like(target))
    return _masked_mean((pred - filled) ** 2, observed)


def _poisson_fit_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return poisson_loss(pred, target, ignore_nan=True)


def _resolve_loss(loss: LossLike) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if callable(loss):
        return loss
    if loss == "poisson":
        return _poisson_fit_loss
    if loss == "mse":
        return _mse_loss
    if loss == "cross_entropy":
        return nn.functional.cross_entropy
    raise ValueError(
        f"loss must be one of {LOSSES} or a callable loss(pred, target) -> scalar tensor, "
        f"got {loss!r}."
    )


# --------------------------------------------------------------------------------------------
# data handling
# --------------------------------------------------------------------------------------------
class _ArrayData:
    """Paired inputs/targets indexed batch by batch.

    NumPy inputs stay NumPy until a batch is drawn, so that a memory-light view (for example the
    lagged movie of :func:`course_tools.models.sysid.make_lagged_movie`) is only copied one
    batch at a time.
    """

    def __init__(self, inputs, targets, target_dtype: torch.dtype, name: str):
        if isinstance(inputs, torch.Tensor | np.ndarray):
            self.inputs = inputs
        else:
            self.inputs = np.asarray(inputs)
        if not isinstance(targets, torch.Tensor):
            targets = torch.from_numpy(np.array(targets))  # a copy: views may be read-only
        self.targets = targets.to(target_dtype)
        if self.inputs.ndim == 0 or self.targets.ndim == 0:
            raise ValueError(f"{name} inputs and targets must have a first (sample) axis.")
        if len(self.inputs) != len(self.targets):
            raise ValueError(
                f"{name} inputs and targets must have the same number of samples, got "
                f"{len(self.inputs)} inputs and {len(self.targets)} targets."
            )
        if len(self.inputs) == 0:
            raise ValueError(f"{name} data is empty: pass at least one sample.")
        if self.inputs.dtype == object or (
            isinstance(self.inputs, np.ndarray) and not np.issubdtype(self.inputs.dtype, np.number)
        ):
            raise TypeError(f"{name} inputs must be numeric, got dtype {self.inputs.dtype}.")
        self.rows: np.ndarray | None = None  # rows of `inputs` in this data set (None: all)

    def __len__(self) -> int:
        return len(self.targets)

    def batch(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        rows = index if self.rows is None else self.rows[index]
        if isinstance(self.inputs, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(self.inputs[rows], dtype=np.float32))
        else:
            x = self.inputs[torch.as_tensor(rows)].float()
        return x, self.targets[torch.as_tensor(index)]

    def subset(self, index: np.ndarray) -> _ArrayData:
        """The samples ``index``; the inputs are not copied (rows are looked up per batch)."""
        part = copy.copy(self)
        part.rows = index if self.rows is None else self.rows[index]
        part.targets = self.targets[torch.as_tensor(index)]
        return part


def _as_data(data: DataLike, target_dtype: torch.dtype, name: str) -> _ArrayData | Dataset:
    if isinstance(data, Dataset):
        if not hasattr(data, "__len__"):
            raise TypeError(f"{name} Dataset must define __len__ (a map-style dataset).")
        if len(data) == 0:
            raise ValueError(f"{name} data is empty: pass at least one sample.")
        return data
    if isinstance(data, tuple | list) and len(data) == 2:
        return _ArrayData(data[0], data[1], target_dtype, name)
    raise TypeError(
        f"{name} must be a pair (inputs, targets) of arrays/tensors or a torch Dataset yielding "
        f"(input, target) pairs, got {type(data).__name__}"
        + (f" of length {len(data)}" if isinstance(data, tuple | list) else "")
        + "."
    )


def _split(data, val_fraction: float, rng: np.random.Generator):
    n = len(data)
    n_val = int(round(val_fraction * n))
    if n_val == 0 or n_val >= n:
        raise ValueError(
            f"val_fraction={val_fraction} of {n} samples leaves {n_val} validation and "
            f"{n - n_val} training samples; both need at least one. Pass more data, another "
            "val_fraction, or an explicit val=(inputs, targets)."
        )
    order = rng.permutation(n)
    val_index, train_index = np.sort(order[:n_val]), np.sort(order[n_val:])
    if isinstance(data, _ArrayData):
        return data.subset(train_index), data.subset(val_index)
    return Subset(data, train_index.tolist()), Subset(data, val_index.tolist())


def _batches(data, batch_size: int, shuffle: bool, generator: torch.Generator | None):
    n = len(data)
    if isinstance(data, _ArrayData):
        order = torch.randperm(n, generator=generator).numpy() if shuffle else np.arange(n)
        for start in range(0, n, batch_size):
            yield data.batch(order[start : start + batch_size])
    else:
        loader = DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator)
        for x, y in loader:
            yield x.float(), y


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------
def _check_positive_int(name: str, value, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def _check_first_batch(pred, y, loss, name: str) -> None:
    if not isinstance(pred, torch.Tensor):
        raise TypeError(
            f"the model must return a tensor, got {type(pred).__name__}. Wrap models that return "
            "tuples or dicts so that forward returns the prediction only."
        )
    if loss == "cross_entropy":
        if pred.ndim != 2 or y.ndim != 1 or len(pred) != len(y):
            raise ValueError(
                "loss='cross_entropy' needs model outputs of shape (batch, n_classes) and integer "
                f"targets of shape (batch,), got outputs {tuple(pred.shape)} and targets "
                f"{tuple(y.shape)}."
            )
        return
    if isinstance(loss, str) and pred.shape != y.shape:
        raise ValueError(
            f"model outputs have shape {tuple(pred.shape)} but {name} targets have shape "
            f"{tuple(y.shape)}; the model needs one output per target column."
        )
    if loss == "poisson":
        if bool((pred < 0).any()):
            raise ValueError(
                "loss='poisson' needs non-negative predictions (rates), but the model returned "
                "negative values. End the network with softplus, ELU + 1 or exp."
            )
        if bool((y < 0).any()):
            raise ValueError(
                f"loss='poisson' needs non-negative targets (counts), but the {name} targets "
                "contain negative values. Use loss='mse' for z-scored responses."
            )


def _check_inputs_finite(x: torch.Tensor, name: str) -> None:
    if x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise ValueError(
            f"{name} inputs contain NaN or inf; clean or impute the stimuli before training."
        )


def _resolve_optimizer(optimizer, params, lr: float, weight_decay: float):
    if isinstance(optimizer, str):
        if optimizer not in _OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {sorted(_OPTIMIZERS)} or a callable "
                f"params -> torch.optim.Optimizer, got {optimizer!r}."
            )
        return _OPTIMIZERS[optimizer](params, lr=lr, weight_decay=weight_decay)
    if callable(optimizer):
        opt = optimizer(params)
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(
                f"the optimizer factory must return a torch.optim.Optimizer, got "
                f"{type(opt).__name__}."
            )
        return opt
    raise TypeError(f"optimizer must be a string or a callable, got {type(optimizer).__name__}.")


def _resolve_regularizer(regularizer, model: nn.Module):
    if regularizer is None:
        return None
    if isinstance(regularizer, str):
        if regularizer != "auto":
            raise ValueError(
                f"regularizer must be 'auto', None or a callable model -> tensor, got "
                f"{regularizer!r}."
            )
        method = getattr(model, "regularizer", None)
        return (lambda m: m.regularizer()) if callable(method) else None
    if callable(regularizer):
        return regularizer
    raise TypeError(
        f"regularizer must be 'auto', None or a callable, got {type(regularizer).__name__}."
    )


# --------------------------------------------------------------------------------------------
# evaluation and training
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def _evaluate(model, data, loss_fn, batch_size: int, device, target_dtype) -> float:
    total, count = 0.0, 0
    for x, y in _batches(data, batch_size, shuffle=False, generator=None):
        pred = model(x.to(device))
        total += float(loss_fn(pred, y.to(device=device, dtype=target_dtype))) * len(y)
        count += len(y)
    return total / count


def fit(
    model: nn.Module,
    train: DataLike,
    *,
    val: DataLike | None = None,
    val_fraction: float = 0.1,
    loss: LossLike = "poisson",
    optimizer: str | Callable = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int = 64,
    max_epochs: int = 50,
    patience: int | None = 5,
    min_delta: float = 0.0,
    seed: int = 0,
    progress: bool = True,
    regularizer: str | Callable[[nn.Module], torch.Tensor] | None = "auto",
    device: str | torch.device = "cpu",
) -> TrainingHistory:
    """Train ``model`` in place with mini-batches and early stopping; return the history.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of inputs ``(batch, ...)`` to predictions: ``(batch, n_targets)`` for
        ``"poisson"`` / ``"mse"``, logits ``(batch, n_classes)`` for ``"cross_entropy"``.
    train : (inputs, targets) or torch.utils.data.Dataset
        ``inputs`` array or tensor ``(n_samples, ...)`` (cast to float32 batch by batch; NumPy
        views stay uncopied), ``targets`` ``(n_samples, n_targets)`` or, for cross-entropy,
        integer labels ``(n_samples,)``. A Dataset yields ``(input, target)`` pairs.
    val : same types as ``train``, optional
        Validation data. If None, a random ``val_fraction`` of ``train`` (seeded) is held out.
    val_fraction : float in [0, 1)
        Used only when ``val`` is None. 0 trains on everything for ``max_epochs`` epochs
        without early stopping.
    loss : {"poisson", "mse", "cross_entropy"} or callable
        See the module docstring; a callable is ``loss(pred, target) -> scalar tensor``.
    optimizer : {"adam", "adamw", "sgd"} or callable
        A name, or a factory ``params -> torch.optim.Optimizer`` (then ``lr`` and
        ``weight_decay`` are ignored).
    lr, weight_decay : float
        Learning rate and (decoupled for AdamW, L2 otherwise) weight decay.
    batch_size, max_epochs : int
        Mini-batch size and the maximum number of passes over the training data.
    patience : int or None
        Stop after this many epochs without a validation-loss improvement larger than
        ``min_delta``; None never stops early.
    min_delta : float
        Smallest decrease of the validation loss that counts as an improvement.
    seed : int
        Seeds the validation split, the batch order and random layers (noise, dropout).
    progress : bool
        Show a tqdm bar over epochs with the current losses.
    regularizer : "auto", None or callable
        Penalty added to the training loss: ``regularizer(model) -> scalar tensor``. ``"auto"``
        uses ``model.regularizer()`` when the model defines it (the system-identification CNNs
        do), else nothing.
    device : str or torch.device
        Where to train; the model is moved there.

    Returns
    -------
    TrainingHistory
        The model is left in eval mode holding the weights of ``history.best_epoch``.

    Examples
    --------
    >>> import torch
    >>> from course_tools.models.training import fit
    >>> x = torch.randn(200, 3)
    >>> y = torch.poisson(torch.exp(x @ torch.tensor([[0.5], [-0.3], [0.2]])))
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Softplus())
    >>> history = fit(model, (x, y), max_epochs=3, progress=False)
    >>> history.n_epochs
    3
    """
    start = time.perf_counter()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    _check_positive_int("batch_size", batch_size)
    _check_positive_int("max_epochs", max_epochs)
    _check_positive_int("patience", patience, allow_none=True)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}.")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}.")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be non-negative, got {weight_decay}.")
    loss_fn = _resolve_loss(loss)
    penalty_fn = _resolve_regularizer(regularizer, model)
    target_dtype = torch.long if loss == "cross_entropy" else torch.float32

    train_data = _as_data(train, target_dtype, "train")
    if val is not None:
        val_data = _as_data(val, target_dtype, "val")
    elif val_fraction > 0:
        train_data, val_data = _split(train_data, val_fraction, np.random.default_rng(seed))
    else:
        val_data = None

    device = torch.device(device)
    model.to(device)
    opt = _resolve_optimizer(optimizer, model.parameters(), lr, weight_decay)
    shuffle_generator = torch.Generator().manual_seed(int(seed))
    history = TrainingHistory()
    best_state = copy.deepcopy(model.state_dict())
    best_score = math.inf
    epochs_since_best = 0

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        bar = tqdm(range(max_epochs), desc="training", disable=not progress, leave=False)
        for epoch in bar:
            model.train()
            data_sum, penalty_sum, count = 0.0, 0.0, 0
            for x, y in _batches(train_data, batch_size, True, shuffle_generator):
                if epoch == 0:
                    _check_inputs_finite(x, "train")
                x, y = x.to(device), y.to(device=device, dtype=target_dtype)
                pred = model(x)
                if epoch == 0 and count == 0:
                    _check_first_batch(pred, y, loss, "train")
                data_loss = loss_fn(pred, y)
                penalty = penalty_fn(model) if penalty_fn is not None else None
                total = data_loss if penalty is None else data_loss + penalty
                if not bool(torch.isfinite(total.detach())):
                    raise FloatingPointError(
                        f"the training loss became {total.item()} in epoch {epoch}. Lower lr, "
                        "standardise the inputs, or check the targets for NaN/inf."
                    )
                opt.zero_grad(set_to_none=True)
                total.backward()
                opt.step()
                data_sum += data_loss.item() * len(y)
                penalty_sum += (0.0 if penalty is None else penalty.item()) * len(y)
                count += len(y)
            history.train_loss.append(data_sum / count)
            history.train_penalty.append(penalty_sum / count)

            model.eval()
            if val_data is None:
                history.val_loss.append(math.nan)
                history.best_epoch = epoch
                bar.set_postfix(train=f"{history.train_loss[-1]:.4g}")
                continue
            val_loss = _evaluate(
                model, val_data, loss_fn, max(batch_size, 256), device, target_dtype
            )
            history.val_loss.append(val_loss)
            bar.set_postfix(train=f"{history.train_loss[-1]:.4g}", val=f"{val_loss:.4g}")
            if val_loss < best_score - min_delta:
                best_score = val_loss
                history.best_epoch = epoch
                best_state = copy.deepcopy(model.state_dict())
                epochs_since_best = 0
            else:
                epochs_since_best += 1
                if patience is not None and epochs_since_best >= patience:
                    history.stopped_early = epoch < max_epochs - 1
                    break
        bar.close()

    if val_data is not None:
        model.load_state_dict(best_state)
        history.best_val_loss = history.val_loss[history.best_epoch]
    model.eval()
    history.elapsed_seconds = time.perf_counter() - start
    return history


@torch.no_grad()
def predict(
    model: nn.Module,
    inputs,
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> np.ndarray:
    """Run ``model`` in eval mode over ``inputs`` batch by batch and return NumPy outputs.

    Parameters
    ----------
    model : torch.nn.Module
    inputs : array or tensor, shape (n_samples, ...)
        Cast to float32 one batch at a time (NumPy views are not copied as a whole).
    batch_size : int
    device : str or torch.device
    progress : bool
        Show a tqdm bar over batches.

    Returns
    -------
    ndarray, shape (n_samples, ...)
        The model's outputs, concatenated along the first axis.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    _check_positive_int("batch_size", batch_size)
    data = _ArrayData(inputs, np.zeros(len(inputs), dtype=np.float32), torch.float32, "predict")
    was_training = model.training
    model.eval()
    device = torch.device(device)
    model.to(device)
    n_batches = math.ceil(len(data) / batch_size)
    outputs: Sequence[np.ndarray] = []
    try:
        for x, _ in tqdm(
            _batches(data, batch_size, False, None),
            total=n_batches,
            desc="predicting",
            disable=not progress,
            leave=False,
        ):
            outputs.append(model(x.to(device)).cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(outputs, axis=0)
