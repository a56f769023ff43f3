"""Once-for-All's ResNet50 space (`ofa-resnet50`); the torch supernet is in `supernet.py`."""

from __future__ import annotations

from search_spaces.ofa_resnet50.space import OFAResNet50Space

__all__ = ["OFAResNet50Space"]
