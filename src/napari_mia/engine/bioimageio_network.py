"""napari-mia's network as a bioimage.io package runs it: torch and segmentation-models-pytorch only.

This file is copied into every exported package (the ``pytorch_state_dict``
weights' architecture), so it must not import napari-mia. The settings that
change what the network sees are baked in here: down scaling (the image is
scaled before the network and its output scaled back to the input's size),
the classifier's input size (whole images are resized to it), and detection's
non-negative maps.
"""

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from segmentation_models_pytorch.base import ClassificationHead


class Classifier(torch.nn.Module):
    """An smp encoder, global average pooling, dropout and a linear layer: (N, C, H, W) -> (N, classes) logits.

    napari-mia's classifier itself (engine.models uses this class), so exported weights load by the same names.
    """

    def __init__(self, encoder, classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = ClassificationHead(in_channels=encoder.out_channels[-1], classes=classes, pooling="avg",
                                       dropout=0.2)

    def forward(self, x):
        # The deepest features only: they see the whole image.
        return self.head(self.encoder(x)[-1])


class MiaNetwork(torch.nn.Module):
    """(batch, channel, y, x) normalised image -> logits (segmentation, classification) or object maps (detection)."""

    def __init__(self, task: str, architecture: str, encoder: str, in_channels: int, classes: int,
                 downscale: float = 1.0, input_size=None):
        super().__init__()
        self.task, self.downscale = task, float(downscale)
        self.input_size = [int(v) for v in input_size] if input_size else [0, 0]
        if task == "classification":
            self.net = Classifier(smp.encoders.get_encoder(encoder, in_channels=in_channels, depth=5, weights=None),
                                   classes)
        else:
            self.net = smp.create_model(architecture, encoder_name=encoder, encoder_weights=None,
                                        in_channels=in_channels, classes=classes)

    def forward(self, x):
        if self.task == "classification":
            # The class belongs to the whole image: resized to the size the classifier was trained at.
            x = F.interpolate(x, size=(self.input_size[0], self.input_size[1]), mode="bilinear", align_corners=False)
            return self.net(x)
        size = x.shape[-2:]
        if self.downscale != 1.0:
            x = F.interpolate(x, scale_factor=self.downscale, mode="bilinear", align_corners=False)
        out = self.net(x)
        if self.task == "detection":
            out = torch.relu(out)  # object maps have no negative heights
        if self.downscale != 1.0:
            out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        return out
