"""`hpstudy.training` is `hpstudy.engine.training`: kept for code that imports it by its old name.

Importing it registers hpstudy's Keras objects, as loading a saved model with plain Keras needs.
"""
import sys

from hpstudy.engine import training

sys.modules[__name__] = training
