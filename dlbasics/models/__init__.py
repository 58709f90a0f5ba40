"""LightningModules of dlbasics; the CLI selects them by class name (``--model RuleClassifier``)."""

from dlbasics.models.linear_regression import LinearRegression
from dlbasics.models.mnist import MNISTCNN, MNISTMLP
from dlbasics.models.rule_classifier import RuleClassifier
from dlbasics.models.sine import SineGRU, SineLSTM, SinePlainRNN

__all__ = ["MNISTCNN", "MNISTMLP", "LinearRegression", "RuleClassifier", "SineGRU", "SineLSTM", "SinePlainRNN"]
