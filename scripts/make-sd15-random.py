"""A full-size Stable Diffusion 1.5 ONNX folder with random weights, for measuring memory and speed.

The architecture and sizes are SD 1.5's (UNet 860M parameters, CLIP ViT-L/14 text encoder, the KL VAE),
built from diffusers' and transformers' own model classes and exported the way diffusers'
scripts/convert_stable_diffusion_checkpoint_to_onnx.py does (opset 14, float32; the UNet's weights in
one external file). The weights are random: the images mean nothing, but every tensor has its real
shape, so load time, per-step time and peak memory are those of a real export. The tokenizer and the
scheduler config are copied from test/fixtures/diffusers/tiny-sd (same format; a small vocabulary).

    python scripts/make-sd15-random.py OUT_DIR     (run by scripts/make-sd15-random.sh)
"""

import gc
import json
import shutil
import sys
import time
from pathlib import Path

import onnx
import torch

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "test/fixtures/diffusers/tiny-sd"
OPSET = 14

# runwayml/stable-diffusion-v1-5 unet/config.json (the keys that differ from diffusers' defaults).
UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768,
    attention_head_dim=8,
    norm_num_groups=32,
)
# vae/config.json
VAE = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    sample_size=512,
    scaling_factor=0.18215,
)
# text_encoder/config.json (CLIP ViT-L/14 text tower); the fixture tokenizer's bos/eos ids.
TEXT = dict(
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    projection_dim=768,
    bos_token_id=859,
    eos_token_id=860,
    pad_token_id=860,
)


def export(model, args, path: Path, inputs, outputs, axes, external=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    torch.onnx.export(model, args, path.as_posix(), input_names=inputs, output_names=outputs, dynamic_axes=axes,
                      do_constant_folding=True, opset_version=OPSET, dynamo=False)
    if external:
        # The exporter writes one file per tensor; collect them into model.onnx_data, as exports do.
        m = onnx.load(path.as_posix())
        shutil.rmtree(path.parent)
        path.parent.mkdir()
        onnx.save_model(m, path.as_posix(), save_as_external_data=True, all_tensors_to_one_file=True,
                        location="model.onnx_data", convert_attribute=False)
        del m
    size = sum(f.stat().st_size for f in path.parent.iterdir())
    print(f"{path.parent.name}: {size / 2**20:.0f} MiB in {time.time() - t0:.0f} s", flush=True)


def write_config(dir: Path, config: dict):
    (dir / "config.json").write_text(json.dumps(config, indent=1, default=list))


@torch.no_grad()
def main(out: Path):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    out.mkdir(parents=True, exist_ok=True)
    for part in ("tokenizer", "scheduler"):
        shutil.copytree(FIXTURE / part, out / part, dirs_exist_ok=True)
    index = json.loads((FIXTURE / "model_index.json").read_text())
    index.pop("vae_encoder", None)  # prompt-pair text-to-image needs no encoder; keep the folder small
    (out / "model_index.json").write_text(json.dumps(index, indent=1))

    text = CLIPTextModel(CLIPTextConfig(**TEXT)).eval()
    ids = torch.full((1, 77), TEXT["eos_token_id"], dtype=torch.int32)
    ids[0, 0] = TEXT["bos_token_id"]
    export(text, (ids,), out / "text_encoder/model.onnx", ["input_ids"], ["last_hidden_state", "pooler_output"],
           {"input_ids": {0: "batch", 1: "sequence"}})
    text.config.save_pretrained(out / "text_encoder")
    del text
    gc.collect()

    vae = AutoencoderKL(**VAE).eval()
    vae.forward = lambda latent_sample: vae.decode(latent_sample, return_dict=False)[0]
    export(vae, (torch.randn(1, 4, 64, 64),), out / "vae_decoder/model.onnx", ["latent_sample"], ["sample"],
           {"latent_sample": {0: "batch", 2: "height", 3: "width"}, "sample": {0: "batch", 2: "height", 3: "width"}})
    write_config(out / "vae_decoder", dict(vae.config))
    del vae
    gc.collect()

    unet = UNet2DConditionModel(**UNET).eval()
    print(f"unet: {sum(p.numel() for p in unet.parameters()) / 1e6:.0f}M parameters", flush=True)
    unet.forward_onnx = unet.forward
    unet.forward = lambda sample, timestep, encoder_hidden_states: unet.forward_onnx(sample, timestep, encoder_hidden_states, return_dict=False)[0]
    export(unet, (torch.randn(2, 4, 64, 64), torch.tensor([981.0, 981.0]), torch.randn(2, 77, 768)),
           out / "unet/model.onnx", ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
           {"sample": {0: "batch", 2: "height", 3: "width"}, "timestep": {0: "batch"},
            "encoder_hidden_states": {0: "batch", 1: "sequence"}, "out_sample": {0: "batch", 2: "height", 3: "width"}},
           external=True)
    write_config(out / "unet", dict(unet.config))
    print(f"done: {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]).resolve())
