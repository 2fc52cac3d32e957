"""The analysis layer: what a run's keypoints become once a person looks at them. For a whole
file: zero-lag smoothing (:mod:`.smoothing`), short gaps filled and tracklets joined into one id
per person (:mod:`.joining`), all in :func:`.offline.analyse`; for any run: joint angles
(:mod:`.angles`), one person followed (:mod:`.follow`) and kept in frame (:mod:`.framing`)."""
