"""`timm:NAME`: a timm vision model as a frozen feature extractor, and the paper's Table 13."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from noisecli.core.errors import InputError
from noisecli.core.manifest import sha256_file
from noisecli.how.backbones import BACKBONES, BackboneOptions
from noisecli.how.backbones.base import Backbone

TABLE13 = {   # the paper's 5 vision backbones (its Table 13) by their timm names, weights tags included
    "EfficientNet-B3 (ImageNet-1K and JFT-300M)": "tf_efficientnet_b3.ns_jft_in1k",
    "ResNetv2-152x2 (ImageNet-21K)": "resnetv2_152x2_bit.goog_in21k",
    "Swin-L (ImageNet-21K)": "swin_large_patch4_window7_224.ms_in22k",
    "ConvNext-L (Laion-2B and ImageNet-1K)": "convnext_large_mlp.clip_laion2b_augreg_ft_in1k",
    "ViT-L (Laion-2B)": "vit_large_patch14_clip_224.laion2b",
}


@BACKBONES.register("timm", "`timm:NAME`: timm vision models, pretrained when online, or --weights FILE or random")
class TimmBackbone(Backbone):
    """A timm vision model: its own eval transform, forward_features, then its own pooling."""
    example = "test_vit"
    example_options = {"weights": "random"}
    modality = "image"

    def __init__(self, name: str, options: BackboneOptions):
        if options.pool != "auto":
            raise InputError("timm backbones use the model's own pooling; leave --pool at auto")
        weights, seed, device = options.weights, options.seed, torch.device(options.device)
        import timm
        from timm.data import create_transform, resolve_data_config
        from timm.models import split_model_name_tag
        base, tag = split_model_name_tag(name)   # "vit_large_patch14_clip_224.laion2b": model and weights tag
        if base not in timm.list_models():
            raise InputError(f"unknown timm model '{base}'")
        if tag and name not in timm.list_models(pretrained=True):
            raise InputError(f"timm model '{base}' has no pretrained weights tagged '{tag}'")
        from noisecli.core.hub import hub_reachable
        if weights is None and not hub_reachable():
            raise InputError(f"timm:{name} has no pretrained weights offline: give --weights FILE "
                             "(.safetensors or .pth) or --weights random")
        torch.manual_seed(seed)  # random weights are reproducible
        self.model = timm.create_model(name, pretrained=weights is None)
        if weights not in (None, "random"):
            self.model.load_state_dict(_state_dict(Path(weights)))
            self.digest = sha256_file(weights)
        else:
            self.digest = f"timm-pretrained:{name}" if weights is None else f"random-init:seed={seed}"
        self.model.to(device).eval()
        self.transform = create_transform(**resolve_data_config({}, model=self.model))
        self.spec, self.pool, self.device = f"timm:{name}", "model", device

    def prepare(self, image: np.ndarray, task) -> torch.Tensor:
        from PIL import Image
        img = Image.fromarray(image)
        return self.transform(img.convert("RGB"))

    def collate(self, items: list[torch.Tensor]) -> dict:
        return {"pixels": torch.stack(items).to(self.device)}

    def forward_features(self, batch: dict) -> torch.Tensor:
        return self.model.forward_features(batch["pixels"])

    def forward_head(self, hidden: torch.Tensor, batch: dict) -> torch.Tensor:
        return self.model.forward_head(hidden, pre_logits=True).float().flatten(1)


def _state_dict(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"--weights {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors come in many types
        raise InputError(f"--weights {path} is not a loadable state dict ({type(e).__name__})") from None
    return state.get("state_dict", state)
