"""Models of the visual system: classical baselines, system-identification CNNs and task-trained networks."""
