"""The outputs layer: annotated videos with the source's audio (:mod:`.video`, :mod:`.audio`),
images (:mod:`.image`), keypoints as JSON lines, CSV and COCO (:mod:`.keypoints`, one record per
frame from :mod:`.records`), output paths checked before any work (:mod:`.paths`), and the sink
kinds the run loop writes to (:mod:`.base`)."""
