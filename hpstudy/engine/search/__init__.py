"""The search: the hypermodel (the only code that sees `hp`), the checks that need Keras, the runner, the tuner, the
one adapter over keras-tuner's internals, the design oracle, pruning, checkpoint retention, seed repeats and the
distributed chief and workers. Above `engine.training`, which its trials compile and train with."""
