"""Models of the visual system: classical baselines, system-identification and task-trained CNNs.

- :mod:`~course_tools.models.classical`: Gabor filter banks (simple and complex cells) as
  scikit-learn transformers, the LN-Poisson and Gabor-energy models of V1, and the retina LN model.
- :mod:`~course_tools.models.sysid`: networks fitted to neural data, the McIntosh et al. (2016)
  retina CNN and the Cadena et al. (2019) V1 CNN.
- :mod:`~course_tools.models.training`: the short training loop both use.
- :mod:`~course_tools.models.zoo` and :mod:`~course_tools.models.registry`: the small CNN, ResNet
  and ViT trained on object scenes and shipped with the package, their untrained twins,
  torchvision's networks, :func:`load_model`, model cards and region-to-layer maps.
"""

from course_tools.models.classical import (
    GaborEnergyModel,
    GaborFilterBank,
    LNPoissonModel,
    RetinaLNModel,
    images_to_luminance,
)
from course_tools.models.registry import (
    WeightsDownloadError,
    WeightsIntegrityError,
    available_models,
    load_model,
    model_card,
    region_layers,
)
from course_tools.models.sysid import V1CNN, RetinaCNN, make_lagged_movie
from course_tools.models.training import TrainingHistory, fit, poisson_loss, predict

__all__ = [
    "GaborEnergyModel",
    "GaborFilterBank",
    "LNPoissonModel",
    "RetinaCNN",
    "RetinaLNModel",
    "TrainingHistory",
    "V1CNN",
    "WeightsDownloadError",
    "WeightsIntegrityError",
    "available_models",
    "fit",
    "images_to_luminance",
    "load_model",
    "make_lagged_movie",
    "model_card",
    "poisson_loss",
    "predict",
    "region_layers",
]
