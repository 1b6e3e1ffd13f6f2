"""Registry tags: the upstream registry's tags kept to those the ImageStreams hold."""
