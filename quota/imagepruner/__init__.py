"""The image pruner's rules: the CronJob an ImagePruner asks for, and its status."""
