"""Once-for-All's MobileNetV3 space (`ofa-mbv3`); the torch supernet is in `supernet.py`."""

from __future__ import annotations

from search_spaces.ofa_mbv3.space import OFAMobileNetV3Space

__all__ = ["OFAMobileNetV3Space"]
