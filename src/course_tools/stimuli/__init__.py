"""Stimuli with exact metadata: object scenes, naturalistic images and movies.

=============================  =================================================================
:func:`object_scenes`          HvM-like images of 8 categories x 4 objects on textured
                               backgrounds at three variation levels, with a metadata table of
                               generating parameters and exact mask geometry
:func:`naturalistic_images`    grey dead-leaves images with a natural 1/f spectrum, edges and
                               occlusions (V1 experiments)
:func:`white_noise_movie`      binary or Gaussian white-noise movie at :data:`FRAME_RATE_HZ`
:func:`naturalistic_movie`     naturalistic images seen through fixational jitter and saccades
:func:`pink_noise`             Gaussian noise with a ``1 / f ** exponent`` amplitude spectrum
:func:`mask_properties`        area, centroid, axes, perimeter and bounding box of masks
=============================  =================================================================

Every generator takes a ``seed``; item ``i`` (image or movie block) depends only on
``(seed, i)`` and the generator's settings, never on how many items were requested.
"""

from course_tools.stimuli.movies import FRAME_RATE_HZ, naturalistic_movie, white_noise_movie
from course_tools.stimuli.natural import naturalistic_images
from course_tools.stimuli.properties import mask_properties
from course_tools.stimuli.scenes import VARIATION_RANGES, VARIATIONS, object_scenes
from course_tools.stimuli.shapes import CATEGORIES
from course_tools.stimuli.textures import pink_noise

__all__ = [
    "CATEGORIES",
    "FRAME_RATE_HZ",
    "VARIATIONS",
    "VARIATION_RANGES",
    "mask_properties",
    "naturalistic_images",
    "naturalistic_movie",
    "object_scenes",
    "pink_noise",
    "white_noise_movie",
]
