"""The processes of ``--io-processes``: a video decoded in one process and drawn + encoded in
another, frames passed through shared memory, so the inference thread has its interpreter alone."""
