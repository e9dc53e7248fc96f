"""What goes live, and on what evidence. The one door every learner's candidate passes through.

- ``judge``: :func:`~segdemo.promotion.judge.judge` (guard + evidence + drift limit) and
  :func:`~segdemo.promotion.judge.publish_version` (the next version, written, live when promoted).
- ``guard``: the promotion policy, pure functions of confusion matrices (classes being learned, drift, noise).
- ``evidence``: test-then-train evidence, the live model's predictions at save time against the corrections.
- ``live``: the model a workspace serves: its live version, else the last good one, else the shipped weights.
"""
