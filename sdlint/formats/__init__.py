"""Readers of the weight file formats sdlint checks."""
