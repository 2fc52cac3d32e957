"""The models layer: everything that needs torch. The person detector, the pose model and its
crops and heatmap decoding, loading checkpoints, device and dtype choice, and the speed-ups
(batch-norm folding, fixed-shape RT-DETR, CUDA graphs). It knows nothing of frames over time."""
