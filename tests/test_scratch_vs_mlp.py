"""The NumPy two-layer net against MNISTMLP: same architecture, initialisation and recipe, same accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import read_metrics

from dlbasics.data.mnist import DEBIAN_FASHION_MNIST, MNISTDataModule
from dlbasics.scratch import SGD, TwoLayerNet, train


@pytest.mark.slow
@pytest.mark.skipif(not Path(DEBIAN_FASHION_MNIST).is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_scratch_two_layer_net_matches_mnistmlp_on_fashion_mnist(cli):
    # The fish-book recipe through Lightning: 784-50-10 sigmoid, N(0, 0.01²), SGD lr 0.1, batch 100, 10,000 steps;
    # README's command for it on Fashion-MNIST, as written, which tests its best checkpoint at the end (README: 0.8525).
    fish = ("fit", "--config", "mnist_mlp_fishbook", "--data.dataset", "fashion_mnist")
    run = cli(*fish)
    assert read_metrics(run)["test/acc"][-1] >= 0.84
    tested = cli("test", *fish[1:], "--ckpt_path", run / "checkpoints" / "last.ckpt")
    lightning_acc = read_metrics(tested)["test/acc"][-1]

    # The same on the same 55k training images (pixels / 255), by hand-written backprop in NumPy.
    data = MNISTDataModule(dataset="fashion_mnist", normalization="unit", num_val=5000)
    data.setup("fit")
    (x, y), (xt, yt) = data.splits["train"], data.splits["test"]
    flat = lambda images: images.reshape(len(images), -1).numpy().astype(np.float64) / 255  # noqa: E731
    net = TwoLayerNet(784, 50, 10, activation="sigmoid", weight_init_std=0.01, seed=0)
    train(net, flat(x), y.numpy(), optimizer=SGD(lr=0.1), batch_size=100, iters=10_000, seed=0)
    scratch_acc = net.accuracy(flat(xt), yt.numpy())

    assert lightning_acc > 0.8 and scratch_acc > 0.8
    assert abs(scratch_acc - lightning_acc) <= 0.01, (scratch_acc, lightning_acc)
