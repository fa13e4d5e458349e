"""Neural datasets: one dataset type, simulated populations with ground truth, and real loaders.

- :class:`NeuralDataset`: responses ``(n_repeats, n_stimuli, n_neurons)`` with stimuli,
  metadata and (for simulations) ground truth; :class:`RetinaRecording` pairs a retina
  experiment's training and repeated test datasets.
- Simulations: :func:`simulated_v1` (V1 population of simple, complex and non-classical
  cells), :func:`simulated_retina` (ganglion cells as LN-LN subunit cascades), and
  :func:`simulated_ventral` (a SURROGATE V1/V4/IT built on a separately trained network).
- Real data, downloaded once with checksums: :func:`load_majajhong2015` (V4/IT),
  :func:`load_cadena2019` (V1), and :func:`load_deep_retina_h5` for retina files you have.
"""

from course_tools.datasets.core import NeuralDataset, RetinaRecording
from course_tools.datasets.real import (
    DataLicenseNotice,
    DatasetDownloadError,
    load_cadena2019,
    load_deep_retina_h5,
    load_majajhong2015,
)
from course_tools.datasets.simulated_retina import simulated_retina
from course_tools.datasets.simulated_v1 import simulated_v1
from course_tools.datasets.ventral import simulated_ventral

__all__ = [
    "DataLicenseNotice",
    "DatasetDownloadError",
    "NeuralDataset",
    "RetinaRecording",
    "load_cadena2019",
    "load_deep_retina_h5",
    "load_majajhong2015",
    "simulated_retina",
    "simulated_v1",
    "simulated_ventral",
]
