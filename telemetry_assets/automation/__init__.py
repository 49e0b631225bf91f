"""What runs without a person: one schedule set or sensor per module."""
