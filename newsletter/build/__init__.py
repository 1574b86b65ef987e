"""The issue pipeline: issue file → validated issue → rendered variants → files on disk."""
