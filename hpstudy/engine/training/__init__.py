"""What a trial compiles and trains with: the optimizer, loss and precision (`compile`), the callbacks, the
learning-rate schedules and `train.distribution` (`parallel`). Knows nothing of the search above it."""
