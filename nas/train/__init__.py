"""Training: one loop, trainers plugged into it.

- `loop.TrainingLoop`: position (phase, epoch, batch, step), checkpoints and exact resume,
  metrics.jsonl, `max_steps`, progress (`StepLog`), rank-0 writes under data parallelism.
- `trainer.Trainer`: what a kind of training supplies to the loop (lifecycle in its docstring);
  `trainer.RunTrainer`: a supernet trainer `nas train-supernet` builds from a `TrainConfig`.
- `registry.TRAINERS`: space family (`SearchSpace.family`) -> method -> trainer.
- Trainers: `once_for_all` (sandwich, progressive shrinking, spos), `bilevel` (the DARTS family),
  `darts_eval` (a genotype's network, `nas train`); fine-tuning lives in `nas.finetune`.
- `supernet_run.train_run`: a `nas train-supernet` run end to end.

Modules are imported directly (`from nas.train.supernet_run import train_run`) so that
importing this package stays cheap.
"""

from __future__ import annotations
