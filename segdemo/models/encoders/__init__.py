"""Encoders: the feature extractors decoders are built on (EfficientNet-Lite0, the shared encoder; ResNet
stages)."""
