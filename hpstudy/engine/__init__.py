"""The search: the hypermodel, the checks that need Keras, the runner, and the one adapter over keras-tuner.

Imports Keras (and keras-tuner): the API and the command line import it lazily.
"""
