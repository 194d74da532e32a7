"""The answers a study gives: what each hyperparameter did, with its uncertainty. No Keras."""
