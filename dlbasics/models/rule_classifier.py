"""Rule classifier: is x[0] > x[4]? A linear layer + sigmoid trained with a logits loss.

dlbasics fit --config configs/rule_classifier.yaml
dlbasics predict --config configs/rule_classifier.yaml --ckpt_path <ckpt> --data.predict_path vectors.csv
"""

from __future__ import annotations

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from dlbasics.models.base import Classifier, check_input, check_positive


class RuleClassifier(Classifier):
    """Logistic regression on ``num_features``-dim vectors: ``forward`` returns one logit per row.

    ``sigmoid(model(x))`` is the probability of class 1; class = ``model(x) > 0``.

    Args:
        num_features: Vector length (linked from the DataModule).
        num_classes: Classes (linked from the DataModule); the rule is binary, so 2.
    """

    def __init__(
        self,
        num_features: int = 5,
        num_classes: int = 2,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        if num_classes != 2:
            raise ValueError(f"RuleClassifier is binary: num_classes must be 2, got {num_classes}")
        super().__init__(2, optimizer, lr_scheduler)
        check_positive(num_features=num_features)
        self.save_hyperparameters()
        self.linear = nn.Linear(num_features, 1)
        self.example_input_array = torch.zeros(1, num_features)  # the model summary's sizes and FLOPs

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, self.hparams.num_features)
        return self.linear(x).squeeze(-1)
