"""Model builders: plain Keras functions of plain values, in one registry (see `core`)."""

from hpstudy.models import plain   # importing a builder module registers its builders
from hpstudy.models.core import BUILDERS, RAW_PIXELS, build, options, register

__all__ = ["BUILDERS", "RAW_PIXELS", "build", "options", "register", "plain"]
