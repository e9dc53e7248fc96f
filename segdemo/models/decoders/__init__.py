"""Decoders, one module per family (FCN-8s, U-Net, SegNet): each registers its builders on import."""
