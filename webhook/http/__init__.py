"""Flask adapters: thin routes around the pure admission, pull-secret and quota cores."""
