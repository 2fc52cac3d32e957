"""The runtime layer: the threaded pipeline (capture → engine → results, newest-only for live
sources, never dropping for files) and the one run loop every face uses (:func:`.run.run`)."""
