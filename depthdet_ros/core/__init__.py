"""Inference core: onnxruntime models, fusion and geometry, with no ROS imports."""
