"""Running a study with Keras and keras-tuner, one way up: `interrupt` (Ctrl-C) and `progress` (the lines and bar of a
run) ← `training` (what a trial compiles and trains with) ← `search` (the hypermodel, the tuner, the runner).

Imports Keras (and keras-tuner): the API and the command line import it lazily.
"""
