"""How the models learn from corrections. Every learner trains a model's *top* (see :mod:`segdemo` for the words)
and hands its candidate to :mod:`segdemo.promotion`, which judges and publishes it.

- ``features``: the feature caches, on one stamped file store: the workspace's (a frozen trunk's maps per sample,
  swept) and a dataset's (the shared encoder's maps at a few scales and mirrors, for decoder training).
- ``top_training``: a top trained on cached features; shared by the learners.
- ``losses``: the cross-entropy on corrections and the one distillation term every learner uses.
- ``learner``: the fast learner, after each Save (a background thread per workspace and model).
- ``finetune``: the Fine-tune button's job: the workspace's job slot and lock, its thread, progress and cancel.
- ``finetune_settings``: the job's settings, shared and per path (``top.*``, ``whole.*``).
- ``top_path``: the job's top path (the top on cached features, distilled, judged on the latest saves).
- ``whole_path``: the job's whole-network path (the whole network on the training samples, judged on held-out).
- ``train``: the whole-network training loop (the CLI's ``train`` and the job's whole path), checkpoints, DDP.
- ``train_decoder``: a family's decoder trained offline on the frozen shared encoder.
- ``strokes``: the editor's fill-in, a classifier re-fitted on one image's painted pixels (never published).
"""
