"""hpstudy: hyperparameter studies of CNN image classifiers, with Keras and keras-tuner.

    hpstudy.run("studies/quickstart.yaml")           # search (resumes what is already there)
    study = hpstudy.load_study("results/quickstart")  # .trials DataFrame, .best_hyperparameters
    model = hpstudy.load_best("results/quickstart")   # the best model, compiled
    found = hpstudy.analyze(table, "val_accuracy")    # any tool's trials DataFrame: .effects, print(found)
"""
__version__ = "0.1.0"
__all__ = ["run", "load_spec", "load_study", "load_best", "Study", "analyze", "HpstudyError", "__version__"]

from hpstudy.errors import HpstudyError


def __getattr__(name):
    # Lazy: `import hpstudy` stays light; Keras is imported by the first verb that needs it.
    if name in ("run", "load_spec", "load_study", "load_best", "Study", "analyze"):
        from hpstudy import api
        return getattr(api, name)
    raise AttributeError(f"module 'hpstudy' has no attribute {name!r}")
