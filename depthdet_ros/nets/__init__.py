"""PyTorch networks (training and export only): hybrid CNN, U-Net, YOLOv5.

hybrid: hybrid CNN depth nets, `build_depth_net`, `load_authors_checkpoint`; unet: seed 000's
U-Net; yolov5: `build_yolov5`; registry: every arch by name and the training-checkpoint
format; export: ONNX export (`depthdet export`); summary: params/FLOPs table. Import the
submodules directly: this package imports nothing, so `depthdet --help` needs no torch.
"""
