"""Peer (a): the conventional PyTorch script (pytorch/examples' MNIST CNN) on Fashion-MNIST.

python benchmarks/peer_pytorch.py --root <torchvision root> --epochs 3 --target 0.90
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from peer_common import Net, evaluate, loaders, report
from torch.optim.lr_scheduler import StepLR


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--target", type=float, default=1.1, help="stop once test accuracy reaches this")
    parser.add_argument("--max-batches", type=int, default=0, help="cap batches per epoch (0: all)")
    args = parser.parse_args()
    torch.manual_seed(1)
    train, test = loaders(args.root)
    model = Net()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    report(event="ready")
    for epoch in range(1, args.epochs + 1):
        start, samples = time.perf_counter(), 0
        for i, (x, y) in enumerate(train):
            if args.max_batches and i >= args.max_batches:
                break
            optimizer.zero_grad()
            loss = F.nll_loss(model(x), y)
            loss.backward()
            optimizer.step()
            samples += len(y)
        seconds = time.perf_counter() - start
        scheduler.step()
        acc = evaluate(model, test)
        report(event="epoch", epoch=epoch, epoch_seconds=seconds, samples=samples, test_acc=acc)
        if acc >= args.target:
            break


if __name__ == "__main__":
    main()
