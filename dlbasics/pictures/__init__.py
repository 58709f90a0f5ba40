"""The pictures of a run, one callback each: saved as PNG in the run directory and sent to TensorBoard and wandb.

    dlbasics fit --config configs/fashion_mnist_cnn.yaml   # learning curves; after the test, the test pictures

Models compute and expose what a picture needs (``closed_form()``, ``test_confusion``, ``block_outputs()``,
``hidden_activations()``, ``forecast()``, ``predict_step``'s classes and probabilities); these callbacks draw it
(:mod:`~dlbasics.pictures.fit` at the end of fit, :mod:`~dlbasics.pictures.evaluate` after a test or a
prediction), on global rank 0 only, and skip ``fast_dev_run`` smoke tests. Each is a default entry of
``trainer.callbacks`` (see ``dlbasics fit --print_config``) and does nothing for a model that lacks what it draws,
so the same list serves every experiment; drop one by listing the others in YAML.
"""

from dlbasics.pictures.evaluate import ActivationMaps, ConfusionMatrix, Forecast, MisclassifiedImages, PredictionGrid
from dlbasics.pictures.figure import log_figure
from dlbasics.pictures.fit import ActivationHistograms, FittedCurve, LearningCurves

#: The picture callbacks, in the order of the default ``trainer.callbacks``.
PICTURES = (
    LearningCurves, FittedCurve, ConfusionMatrix, MisclassifiedImages, ActivationMaps, Forecast, PredictionGrid,
    ActivationHistograms,
)  # fmt: skip

__all__ = ["PICTURES", *(p.__name__ for p in PICTURES), "log_figure"]
