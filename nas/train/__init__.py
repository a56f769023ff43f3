"""Supernet training: sandwich rule, progressive shrinking, checkpoints and exact resume.

Modules are imported directly (`from nas.train.loop import train_supernet`) so that importing
this package stays cheap.
"""

from __future__ import annotations
