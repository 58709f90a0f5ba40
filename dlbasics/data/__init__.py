"""LightningDataModules of dlbasics; the CLI selects them by class name (``--data LinearData``)."""

from dlbasics.data.memory import InMemoryDataModule, InMemoryLoader
from dlbasics.data.mnist import MNISTDataModule
from dlbasics.data.sine import SineData
from dlbasics.data.synthetic import LinearData, PolynomialData, RuleData

__all__ = [
    "InMemoryDataModule",
    "InMemoryLoader",
    "LinearData",
    "MNISTDataModule",
    "PolynomialData",
    "RuleData",
    "SineData",
]
