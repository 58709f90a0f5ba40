"""Rule classifier: is x[0] > x[4]? A linear layer + sigmoid trained with a logits loss.

dlbasics fit --config configs/rule_classifier.yaml
dlbasics predict --config configs/rule_classifier.yaml --ckpt_path <ckpt> --data.predict_path vectors.csv
"""

from __future__ import annotations

from torch import Tensor, nn

from dlbasics.models.base import Classifier, OptimizerName, SchedulerName, check_input, check_positive


class RuleClassifier(Classifier):
    """Logistic regression on ``num_features``-dim vectors: ``forward`` returns one logit per row.

    ``sigmoid(model(x))`` is the probability of class 1; class = ``model(x) > 0``.

    Args:
        num_features: Vector length (linked from the DataModule).
        lr: Learning rate.
        optimizer: ``sgd``, ``adam``, ``adamw`` or ``adadelta``.
        momentum: SGD momentum.
        weight_decay: L2 penalty.
        scheduler: ``none``, ``onecycle``, ``cosine`` or ``step``.
    """

    def __init__(
        self,
        num_features: int = 5,
        lr: float = 0.1,
        optimizer: OptimizerName = "adam",
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        scheduler: SchedulerName = "none",
    ) -> None:
        super().__init__(num_classes=2)
        check_positive(lr=lr, num_features=num_features)
        self.save_hyperparameters()
        self.linear = nn.Linear(num_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, self.hparams.num_features)
        return self.linear(x).squeeze(-1)
