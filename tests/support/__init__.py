"""Test helpers: clips and images made with PyAV, scripted detectors, tiny models, tool checks."""
