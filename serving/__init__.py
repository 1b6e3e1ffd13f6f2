"""What the two doors (``serve``'s webhook server and the front door) share: TLS serving under
gunicorn, the push judge and its watch caches, the quota charge, the caller reviews."""
