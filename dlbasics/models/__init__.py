"""LightningModules of dlbasics; the CLI selects them by class name (``--model RuleClassifier``)."""

from dlbasics.models.linear_regression import LinearRegression
from dlbasics.models.rule_classifier import RuleClassifier

__all__ = ["LinearRegression", "RuleClassifier"]
