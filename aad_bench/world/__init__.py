"""The embedded default world: procedurally generated image-to-video clips with exact ground-truth motion."""
