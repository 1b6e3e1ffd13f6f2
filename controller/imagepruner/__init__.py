"""Image pruning: the ``image-pruner`` CronJob rendered from ``imagepruners/cluster``."""
