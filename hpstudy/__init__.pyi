# What type checkers and editors see of `hpstudy`: the lazy verbs of __init__.py as what they are, the API's own
# definitions (signatures and docstrings come from where hpstudy/api.py defines or imports them; nothing is
# repeated here).
from hpstudy import api as api
from hpstudy.api import (
    Study as Study,
    analyze as analyze,
    load_best as load_best,
    load_spec as load_spec,
    load_study as load_study,
    run as run,
)
from hpstudy.errors import HpstudyError as HpstudyError

__version__: str
__all__ = ["run", "load_spec", "load_study", "load_best", "Study", "analyze", "HpstudyError", "__version__"]

def __dir__() -> list[str]: ...
