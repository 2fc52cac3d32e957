"""Process-wide helpers below every layer: thread priority, Ctrl-C held over a write, host memory, names imported on first use."""
