"""The front layer: the command line (:mod:`.cli`) and the demo fit (:mod:`.demo`)."""
