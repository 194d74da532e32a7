"""A study's results folder, no Keras: its layout, lock, creation and reopening, trials table, statuses, searched
values and learning curves."""
