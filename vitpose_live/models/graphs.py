"""CUDA graphs for a model's forward pass at fixed batch sizes.

Eager PyTorch launches every kernel from Python, which costs more than the kernels themselves for
a ViT on a handful of crops (figures in bench/RESULTS.md). A CUDA graph records the launches once per batch size and replays them in one call.
Batches are padded up to the next bucket (1, 2, 4, 8, then multiples of 8 up to ``max_batch``);
graphs are captured the first time a bucket is used and share one memory pool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    inputs: torch.Tensor
    outputs: torch.Tensor


def bucket_for(count: int, max_batch: int) -> int:
    """The batch size ``count`` items run at: a power of two up to 8, then the next multiple of 8
    (never above ``max_batch``), so padding wastes at most 7 items' work past 8."""
    size = 1 << max(count - 1, 0).bit_length() if count <= 8 else -(-count // 8) * 8
    return min(size, max_batch)


class GraphedForward:
    """``run(batch) -> tensor`` replayed from CUDA graphs, one per bucket; thread-safe."""

    def __init__(self, run: Callable[[torch.Tensor], torch.Tensor], max_batch: int):
        self._run = run
        self.max_batch = max_batch
        self._graphs: dict[tuple, _Captured] = {}
        self._pool = None
        self._lock = threading.Lock()

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        count = batch.shape[0]
        if count > self.max_batch:
            raise ValueError(f"{count} items exceed the largest graph ({self.max_batch})")
        size = bucket_for(count, self.max_batch)
        key = (size, *batch.shape[1:], batch.dtype, batch.device)
        with self._lock:
            captured = self._graphs.get(key)
            if captured is None:
                captured = self._graphs[key] = self._capture(size, batch)
            captured.inputs[:count].copy_(batch)
            if count < size:
                captured.inputs[count:].zero_()
            captured.graph.replay()
            return captured.outputs[:count].clone()  # the next replay overwrites the static output

    @property
    def buckets(self) -> list[int]:
        return sorted(key[0] for key in self._graphs)

    def _capture(self, size: int, like: torch.Tensor) -> _Captured:
        inputs = torch.zeros((size, *like.shape[1:]), dtype=like.dtype, device=like.device)
        if like.dim() == 4 and not like.is_contiguous() and like.is_contiguous(memory_format=torch.channels_last):
            inputs = inputs.contiguous(memory_format=torch.channels_last)  # a detector's NHWC input
        side = torch.cuda.Stream(like.device)
        side.wait_stream(torch.cuda.current_stream(like.device))
        with torch.cuda.stream(side):  # warm-up off the capture: lazy initialisations happen here
            for _ in range(2):
                self._run(inputs)
        torch.cuda.current_stream(like.device).wait_stream(side)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            outputs = self._run(inputs)
        return _Captured(graph, inputs, outputs)
