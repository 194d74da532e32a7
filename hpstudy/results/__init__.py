"""A study's results folder: its layout, the readers of its trials, trial models, evaluation, export and predict."""
