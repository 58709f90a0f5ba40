"""The NumPy two-layer net against MNISTMLP: same architecture, initialisation and recipe, same accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import CONFIGS, read_metrics

from dlbasics.data.mnist import DEBIAN_FASHION_MNIST, MNISTDataModule
from dlbasics.scratch import SGD, TwoLayerNet, train


@pytest.mark.slow
@pytest.mark.skipif(not Path(DEBIAN_FASHION_MNIST).is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_scratch_two_layer_net_matches_mnistmlp_on_fashion_mnist(cli):
    # The fish-book recipe through Lightning: 784-50-10 sigmoid, N(0, 0.01²), SGD lr 0.1, batch 100, 10,000 steps.
    fish = ("--config", CONFIGS / "mnist_mlp_fishbook.yaml", "--data.dataset", "fashion_mnist", "--data.root", "null",
            "--data.download", "false")  # fmt: skip
    run = cli("fit", *fish, "--test_after_fit", "false")
    tested = cli("test", *fish, "--ckpt_path", run / "checkpoints" / "last.ckpt")
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
