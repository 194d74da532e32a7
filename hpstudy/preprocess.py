"""`hpstudy.preprocess` is `hpstudy.engine.preprocess`: kept for code that imports it by its old name.

Importing it registers hpstudy's Keras objects, as loading a saved model with plain Keras needs.
"""
import sys

from hpstudy.engine import preprocess

sys.modules[__name__] = preprocess
