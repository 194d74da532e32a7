"""Distributed tuning on keras-tuner's chief and workers: roles, the chief, the workers, and the local launcher."""
