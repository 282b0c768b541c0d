"""PyTorch networks (training and export only): hybrid CNN, U-Net, YOLOv5."""
