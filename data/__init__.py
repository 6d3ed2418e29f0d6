"""Data the pipeline reads: the committed sample and the generator that makes it."""
