"""dlbasics: the deep-learning-basics curriculum as fast, reproducible PyTorch Lightning experiments.

dlbasics fit --config configs/linear_regression.yaml
"""

__version__ = "0.1.0"
