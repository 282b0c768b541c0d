"""depthdet_ros: mono-camera object detection with per-object metric depth."""
