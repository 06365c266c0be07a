"""Fault tests: the app against failing messengers, schedulers and databases."""
