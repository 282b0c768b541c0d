"""Training of the depth network and the detector."""
