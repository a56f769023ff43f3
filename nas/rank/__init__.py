"""Ranking: how well a scorer (supernet, proxy, parameter count) orders subnets like the truth.

The pure parts of `nas rank`: ranking metrics with bootstrap intervals (`metrics`), ground-truth
tables (`truth`), size-stratified subnet samples (`sampling`), zero-cost proxies
(`nas.rank.proxies`, which imports torch) and the report folder (`report`).
"""
