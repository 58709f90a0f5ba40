"""Peer (b): the same model, optimizer and DataLoader as (a), ported to Lightning the usual way.

python benchmarks/peer_lightning.py --root <torchvision root> --epochs 3 --target 0.90
"""

from __future__ import annotations

import argparse
import time

import lightning as L
import torch
import torch.nn.functional as F
from peer_common import Net, evaluate, loaders, report
from torch.optim.lr_scheduler import StepLR


class LitNet(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = Net()

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.nll_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.Adadelta(self.parameters(), lr=1.0)
        return [optimizer], [StepLR(optimizer, step_size=1, gamma=0.7)]


class Report(L.Callback):
    """Test accuracy after every epoch, as the plain script does, and stop at the target."""

    def __init__(self, test, target: float) -> None:
        self.test, self.target, self.start, self.samples = test, target, 0.0, 0

    def on_train_epoch_start(self, trainer, pl_module):
        self.start, self.samples = time.perf_counter(), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.samples += len(batch[1])

    def on_train_epoch_end(self, trainer, pl_module):
        seconds = time.perf_counter() - self.start
        acc = evaluate(pl_module.net, self.test)
        report(
            event="epoch", epoch=trainer.current_epoch + 1, epoch_seconds=seconds, samples=self.samples, test_acc=acc
        )
        trainer.should_stop = acc >= self.target


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--target", type=float, default=1.1)
    parser.add_argument("--max-batches", type=int, default=0)
    args = parser.parse_args()
    L.seed_everything(1)
    train, test = loaders(args.root)
    report(event="ready")
    trainer = L.Trainer(
        max_epochs=args.epochs,
        limit_train_batches=args.max_batches or 1.0,
        callbacks=[Report(test, args.target)],
        enable_progress_bar=False,
        enable_checkpointing=False,
        logger=False,
        enable_model_summary=False,
    )
    trainer.fit(LitNet(), train)


if __name__ == "__main__":
    main()
