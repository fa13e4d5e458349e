"""Neural datasets: one dataset type, simulated populations with ground truth, and real loaders."""
