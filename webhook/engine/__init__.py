"""Controller plumbing in the manner of client-go: work queues, rate limits, leader election."""
