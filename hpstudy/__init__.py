"""hpstudy: hyperparameter studies of CNN image classifiers, with Keras and keras-tuner.

    hpstudy.run("studies/quickstart.yaml")           # search (resumes what is already there)
    study = hpstudy.load_study("results/quickstart")  # .trials DataFrame, .best_hyperparameters
    model = hpstudy.load_best("results/quickstart")   # the best model, compiled
    found = hpstudy.analyze(table, "val_accuracy")    # any tool's trials DataFrame: .effects, print(found)
    hpstudy.api.confirm("results/quickstart")         # every verb of the command line: hpstudy.api
"""
from importlib import import_module as _import_module

__version__ = "0.1.0"
__all__ = ["run", "load_spec", "load_study", "load_best", "Study", "analyze", "HpstudyError", "__version__"]

from hpstudy.errors import HpstudyError

# The verbs re-exported from hpstudy.api, looked up there on first use.
_FROM_API = ("run", "load_spec", "load_study", "load_best", "Study", "analyze")


def __getattr__(name):
    # Lazy: `import hpstudy` stays light (no pandas, no Keras); the API is imported on first use, and Keras by the
    # first verb that needs it.
    if name == "api":
        return _import_module("hpstudy.api")
    if name in _FROM_API:
        return getattr(_import_module("hpstudy.api"), name)
    raise AttributeError(f"module 'hpstudy' has no attribute {name!r}")


def __dir__():
    # What completion offers after `hpstudy.`: the lazy verbs and `api` too, which are not attributes until used.
    return sorted({*globals(), *_FROM_API, "api"})
