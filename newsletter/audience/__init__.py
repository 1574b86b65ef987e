"""The audience: people, their consent, and what they do."""
