"""The PushReview API: the registry asks before it accepts a push."""
