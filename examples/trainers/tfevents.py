"""A trainer that writes TensorBoard event files (collector kind TensorFlowEvent), without TensorFlow.

    python examples/trainers/tfevents.py --lr 0.1 --logdir /tmp/run [--epochs 5]

Writes scalars ``accuracy`` and ``loss`` under ``<logdir>/train`` and ``accuracy`` under
``<logdir>/test``, one step per epoch, with TensorBoard's own event-file writer.
"""

from __future__ import annotations

import argparse
import math
import os
import time

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter


def _scalars(writer: EventFileWriter, step: int, values: dict[str, float]) -> None:
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=k, simple_value=v)
                                         for k, v in values.items()])
    writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--logdir", required=True)
    args, _ = p.parse_known_args(argv)
    train = EventFileWriter(os.path.join(args.logdir, "train"))
    test = EventFileWriter(os.path.join(args.logdir, "test"))
    for epoch in range(1, args.epochs + 1):
        loss = math.exp(-args.lr * epoch * 3)
        _scalars(train, epoch, {"accuracy": 1 - loss / 2, "loss": loss})
        _scalars(test, epoch, {"accuracy": 1 - loss / 1.5})
    train.close()
    test.close()


if __name__ == "__main__":
    main()
