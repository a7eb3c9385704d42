"""Tiny random transformers models (ViTMatte, SAM 2) saved with save_pretrained,
and a helper that puts such a folder into a Hugging Face cache, for offline tests."""

from __future__ import annotations

from pathlib import Path

REV = "0123456789abcdef0123456789abcdef01234567"


def tiny_vitmatte(folder: Path) -> Path:
    import torch
    from transformers import VitDetConfig, VitMatteConfig, VitMatteForImageMatting

    backbone = VitDetConfig(
        num_channels=4,
        image_size=64,
        pretrain_image_size=32,
        patch_size=16,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        mlp_ratio=2,
        use_absolute_position_embeddings=True,
        use_relative_position_embeddings=True,
        window_size=2,
        window_block_indices=[0],
        residual_block_indices=[1],
        out_features=["stage2"],
    )
    config = VitMatteConfig(
        backbone_config=backbone, hidden_size=32, convstream_hidden_sizes=[4, 8, 16], fusion_hidden_sizes=[16, 8, 8, 4]
    )
    torch.manual_seed(0)
    VitMatteForImageMatting(config).eval().save_pretrained(folder)
    return folder


def tiny_sam2(folder: Path) -> Path:
    import torch
    from transformers import Sam2Config, Sam2Model
    from transformers.models.sam2.configuration_sam2 import (
        Sam2HieraDetConfig,
        Sam2MaskDecoderConfig,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )

    # Hiera: the first block of a stage pools, so a global-attention block must not be one.
    backbone = Sam2HieraDetConfig(
        hidden_size=16,
        image_size=[128, 128],
        blocks_per_stage=[1, 2, 1, 1],
        embed_dim_per_stage=[16, 32, 64, 128],
        num_attention_heads_per_stage=[1, 1, 1, 1],
        window_size_per_stage=[4, 4, 4, 4],
        global_attention_blocks=[2],
        window_positional_embedding_background_size=[2, 2],
    )
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=[128, 64, 32, 16],
        backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]],
        fpn_hidden_size=32,
    )
    config = Sam2Config(
        vision_config=vision,
        prompt_encoder_config=Sam2PromptEncoderConfig(hidden_size=32, image_size=128, patch_size=16),
        mask_decoder_config=Sam2MaskDecoderConfig(
            hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32
        ),
    )
    torch.manual_seed(0)
    Sam2Model(config).eval().save_pretrained(folder)
    return folder


def add_folder(cache, repo_id: str, folder: Path, revision: str = REV) -> None:
    """Every file of `folder` into the HF cache (tests.hfcache.HFCache) as repo_id@revision."""
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            cache.add(repo_id, revision, path.relative_to(folder).as_posix(), path.read_bytes())
