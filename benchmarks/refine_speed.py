"""Speed of ViTMatte refinement and SAM 2 picking on CPU (rough figures).

Random weights with the real architectures (speed does not depend on the
weights): ViTMatte small as hustvl/vitmatte-small-composition-1k is configured
(ViTDet-S, 384 wide, 12 blocks, windows of 14 with 4 global/residual blocks)
and SAM 2.1 hiera-tiny (transformers' Sam2Config defaults). Models are saved
with save_pretrained into a temporary folder and loaded through rmbg's own
path. Prints a Markdown table and writes benchmarks/results/refine_speed.json;
medians after one warm-up.

    python benchmarks/refine_speed.py --repeats 3 --threads 2
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from harness import markdown, table, timed, write_results


def photo(w: int, h: int):
    """A textured photo with a soft-edged elliptic subject and its matte."""
    from PIL import Image

    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    yy, xx = np.mgrid[0:h, 0:w]
    d = ((xx - w / 2) / (w * 0.3)) ** 2 + ((yy - h / 2) / (h * 0.4)) ** 2
    alpha = np.clip((1.0 - d) * 2000, 0, 255).astype(np.uint8)
    return img, Image.fromarray(alpha)


def save_vitmatte_small(folder: Path) -> None:
    from transformers import VitDetConfig, VitMatteConfig, VitMatteForImageMatting

    backbone = VitDetConfig(
        num_channels=4,
        image_size=512,
        pretrain_image_size=224,
        patch_size=16,
        hidden_size=384,
        num_attention_heads=6,
        use_absolute_position_embeddings=True,
        use_relative_position_embeddings=True,
        window_size=14,
        window_block_indices=[0, 1, 3, 4, 6, 7, 9, 10],
        residual_block_indices=[2, 5, 8, 11],
        out_features=["stage12"],
    )
    VitMatteForImageMatting(
        VitMatteConfig(
            backbone_config=backbone,
            hidden_size=384,
            convstream_hidden_sizes=[48, 96, 192],
            fusion_hidden_sizes=[256, 128, 64, 32],
        )
    ).save_pretrained(folder)


def save_sam2_tiny(folder: Path) -> None:
    from transformers import Sam2Config, Sam2Model

    Sam2Model(Sam2Config()).save_pretrained(folder)


def median_ms(fn, repeats: int) -> float:
    """Median of `repeats` timed calls after one warm-up, in ms."""
    return timed(fn, repeats, warmup=1)[0].median_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", default="1200x834", help="photo WxH (default about 1 MP)")
    args = parser.parse_args()

    import torch

    from rmbg.refine import get_refiner
    from rmbg.refine.sam2 import EmbeddingCache, Sam2Picker
    from rmbg.refine.trimap import make_trimap, plan_window

    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    img, alpha = photo(w, h)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        vm_dir, sam_dir = Path(tmp) / "vitmatte", Path(tmp) / "sam2"
        save_vitmatte_small(vm_dir)
        save_sam2_tiny(sam_dir)

        tri = make_trimap(np.asarray(alpha))
        window = plan_window(tri == 128, 1024, 32)
        band = f"{(tri == 128).mean() * 100:.1f} % of pixels unknown, window {window.box} -> {window.size}"
        rows.append(
            ("trimap (numpy morphology)", median_ms(lambda: make_trimap(np.asarray(alpha)), args.repeats), band)
        )
        for side in (1024, 512):
            refiner = get_refiner("vitmatte", model=str(vm_dir), device="cpu", precision="fp32", max_side=side)
            ms = median_ms(lambda refiner=refiner: refiner.refine(img, alpha), args.repeats)
            rows.append((f"ViTMatte-S refine, max_side={side}", ms, "trimap + network + paste"))

        picker = Sam2Picker(str(sam_dir), device="cpu", cache=EmbeddingCache(1))
        picker.network()

        def first_click():
            picker.cache.clear()
            picker.mask(img, [(w / 2, h / 2, True)])

        rows.append(("SAM 2.1 tiny: first click (embedding)", median_ms(first_click, args.repeats), "1024x1024 input"))
        picker.mask(img, [(w / 2, h / 2, True)])
        clicks = [[(w / 2, h / 2, True), (w * 0.1, h * 0.1, False)], [(w / 2, h / 2, True)]]
        i = iter(range(10**6))
        rows.append(
            (
                "SAM 2.1 tiny: each further click",
                median_ms(lambda: picker.mask(img, clicks[next(i) % 2]), max(args.repeats, 5)),
                "embedding cached",
            )
        )

    tables = [
        table(
            f"ViTMatte refinement and SAM 2 picking on a {w}x{h} photo ({w * h / 1e6:.2f} MP), CPU",
            ["step", "median ms", "note"],
            [[name, round(ms), note] for name, ms, note in rows],
            notes=f"Random weights with the real architectures (speed does not depend on the weights); "
            f"{args.threads} torch threads; median of {args.repeats} after a warm-up.",
        )
    ]
    print(markdown(tables))
    print(f"\nWrote {write_results('refine_speed', None, tables, packages=('transformers',))}")


if __name__ == "__main__":
    main()
