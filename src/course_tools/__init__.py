"""course_tools: the library of the NeuroAI course "Deep CNNs and the ventral visual stream".

The package is organised so that data flows one way::

    stimuli -> datasets -> models -> activations -> regression / decoding -> plotting

Every random function takes a ``seed``; :func:`seed_everything` seeds Python, NumPy and torch.
Downloaded data lives in :func:`data_home` (``$COURSE_TOOLS_DATA`` or the user's cache directory).
"""

from course_tools._config import data_home
from course_tools.seeding import check_random_state, seed_everything

__version__ = "0.1.0"

__all__ = ["__version__", "check_random_state", "data_home", "seed_everything"]
