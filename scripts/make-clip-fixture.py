"""Build test/fixtures/clip-tiny/: a tiny, randomly initialised CLIP model exported to ONNX in Optimum's
layouts, its tokenizer and preprocessor files, three small test images, and reference outputs computed
by transformers/torch, for test/scorers/clip.test.ts.

No CLIP weights can be downloaded here, so the model is CLIP-shaped but untrained (seeded, so the script
is repeatable on one torch version): 2 layers, width 32, 32×32 images in 8×8 patches, a 16-dim projection.
Its tokenizer is CLIP's byte-level BPE with a small vocabulary learned below (512 byte symbols, a few
hundred merges, the two special tokens), in the vocab.json / merges.txt format of the real one.

Files written:
  text_model.onnx     input_ids, attention_mask -> text_embeds, last_hidden_state  (CLIPTextModelWithProjection)
  vision_model.onnx   pixel_values -> image_embeds, last_hidden_state             (CLIPVisionModelWithProjection)
  model.onnx          input_ids, pixel_values, attention_mask -> logits_per_image, logits_per_text,
                      text_embeds, image_embeds: what `optimum-cli export onnx --model openai/clip-vit-base-patch32`
                      writes (task zero-shot-image-classification)
  config.json, preprocessor_config.json, vocab.json, merges.txt, tokenizer.json, tokenizer_config.json,
  special_tokens_map.json
  images/{wide,tall,small}.png
  reference.json      token ids, pixel values, embeddings and InstructPix2Pix's four numbers per pair

Run from the repository root (a venv with torch, transformers, onnx and pillow):
  python3 -m venv .cache/clip-venv && .cache/clip-venv/bin/pip install torch transformers onnx pillow numpy
  .cache/clip-venv/bin/python scripts/make-clip-fixture.py
"""
import collections
import json
import os
import shutil

import numpy as np
import torch
import transformers
from PIL import Image
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'clip-tiny')
MAX_LENGTH = 24
IMAGE_SIZE = 32
# Not OpenAI's mean and std, so the test shows they are read from preprocessor_config.json.
IMAGE_MEAN = [0.45, 0.42, 0.4]
IMAGE_STD = [0.27, 0.26, 0.28]

CORPUS = """
a photo of a person smiling with a red hat in the park
a portrait of a woman with long dark hair and blue eyes
a man wearing glasses and a beard standing near the sea
make them smile turn the hair blonde add a hat remove the glasses
an old man a young child a happy face a sad face an angry face
the same person older younger with a green background at night
a painting of a cat and a dog on a sunny day in winter snow
""".split()


def bytes_to_unicode():
    """The 256 bytes as printable characters, as CLIP's tokenizer maps them."""
    keep = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def learn_merges(words, count):
    """Plain BPE on the corpus: repeatedly merge the most frequent adjacent pair (ties by first seen)."""
    byte_chars = bytes_to_unicode()
    freq = collections.Counter(words)
    split = {w: [byte_chars[b] for b in w.encode('utf-8')] for w in freq}
    for w in split:
        split[w][-1] += '</w>'
    merges = []
    for _ in range(count):
        pairs = collections.Counter()
        for w, symbols in split.items():
            for a, b in zip(symbols, symbols[1:]):
                pairs[(a, b)] += freq[w]
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: kv[1])[0]
        merges.append(best)
        for w, symbols in split.items():
            out, i = [], 0
            while i < len(symbols):
                if i < len(symbols) - 1 and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            split[w] = out
    return merges


def write_tokenizer():
    merges = learn_merges(CORPUS, 200)
    symbols = list(bytes_to_unicode().values())
    vocab_list = symbols + [s + '</w>' for s in symbols] + [a + b for a, b in merges] + ['<|startoftext|>', '<|endoftext|>']
    vocab = {}
    for token in vocab_list:
        vocab.setdefault(token, len(vocab))
    with open(os.path.join(OUT, 'vocab.json'), 'w', encoding='utf-8') as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(OUT, 'merges.txt'), 'w', encoding='utf-8') as f:
        f.write('#version: 0.2\n' + ''.join(f'{a} {b}\n' for a, b in merges))
    tokenizer = CLIPTokenizer(vocab=vocab, merges=list(merges), model_max_length=MAX_LENGTH,
                              unk_token='<|endoftext|>', bos_token='<|startoftext|>', eos_token='<|endoftext|>', pad_token='<|endoftext|>')
    tokenizer.save_pretrained(OUT)
    # save_pretrained rewrites vocab.json and merges.txt only in some versions; keep ours.
    with open(os.path.join(OUT, 'vocab.json'), 'w', encoding='utf-8') as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(OUT, 'merges.txt'), 'w', encoding='utf-8') as f:
        f.write('#version: 0.2\n' + ''.join(f'{a} {b}\n' for a, b in merges))
    return CLIPTokenizer.from_pretrained(OUT), vocab


def make_model(vocab):
    torch.manual_seed(0)
    text = dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                max_position_embeddings=MAX_LENGTH, bos_token_id=vocab['<|startoftext|>'], eos_token_id=vocab['<|endoftext|>'],
                pad_token_id=vocab['<|endoftext|>'])
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=IMAGE_SIZE, patch_size=8)
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
    config._attn_implementation = 'eager'
    model = CLIPModel(config).eval()
    # transformers' initialisation (std 0.02) makes every embedding point nearly the same way; wider
    # random weights spread the cosines over a useful range.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.3 if 'embedding' in name else 1 / p.shape[-1] ** 0.5)
    config.to_json_file(os.path.join(OUT, 'config.json'))
    return model


def write_preprocessor():
    config = {
        'crop_size': {'height': IMAGE_SIZE, 'width': IMAGE_SIZE}, 'do_center_crop': True, 'do_convert_rgb': True, 'do_normalize': True,
        'do_rescale': True, 'do_resize': True, 'image_mean': IMAGE_MEAN, 'image_processor_type': 'CLIPImageProcessor',
        'image_std': IMAGE_STD, 'resample': 3, 'rescale_factor': 1 / 255, 'size': {'shortest_edge': IMAGE_SIZE},
    }
    with open(os.path.join(OUT, 'preprocessor_config.json'), 'w') as f:
        json.dump(config, f, indent=2)
    # The PIL path: what transformers 4.x calls CLIPImageProcessor and OpenAI's own preprocessing does.
    return CLIPImageProcessorPil(size={'shortest_edge': IMAGE_SIZE}, crop_size={'height': IMAGE_SIZE, 'width': IMAGE_SIZE},
                                 image_mean=IMAGE_MEAN, image_std=IMAGE_STD, resample=3)


def write_images():
    """Three seeded pictures: smooth gradients, a few blocks and noise; one wide, one tall (both shrunk), one small (enlarged)."""
    rng = np.random.default_rng(7)
    os.makedirs(os.path.join(OUT, 'images'), exist_ok=True)
    names = {}
    for name, (w, h) in {'wide': (48, 40), 'tall': (40, 56), 'small': (20, 24)}.items():
        y, x = np.mgrid[0:h, 0:w]
        img = np.stack([255 * x / w, 255 * y / h, 128 + 100 * np.sin((x + y) / 5)], axis=-1)
        for _ in range(3):
            x0, y0 = rng.integers(0, w - 4), rng.integers(0, h - 4)
            img[y0:y0 + rng.integers(3, h // 2), x0:x0 + rng.integers(3, w // 2)] = rng.integers(0, 256, 3)
        img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).round().astype(np.uint8)
        path = os.path.join(OUT, 'images', f'{name}.png')
        Image.fromarray(img, 'RGB').save(path)
        names[name] = Image.open(path).convert('RGB')
    return names


class TextTower(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        out = self.model.text_model(input_ids=input_ids, attention_mask=attention_mask)
        return self.model.text_projection(out.pooler_output), out.last_hidden_state


class VisionTower(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        out = self.model.vision_model(pixel_values=pixel_values)
        return self.model.visual_projection(out.pooler_output), out.last_hidden_state


class WholeModel(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, pixel_values, attention_mask):
        out = self.model(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask)
        return out.logits_per_image, out.logits_per_text, out.text_embeds, out.image_embeds


def export(module, args, path, inputs, outputs, axes):
    torch.onnx.export(module, args, os.path.join(OUT, path), input_names=inputs, output_names=outputs, dynamic_axes=axes,
                      opset_version=14, do_constant_folding=True, dynamo=False)


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    tokenizer, vocab = write_tokenizer()
    model = make_model(vocab)
    processor = write_preprocessor()
    images = write_images()

    ids = torch.tensor([tokenizer('a photo', padding='max_length', max_length=MAX_LENGTH)['input_ids']] * 2)
    mask = torch.ones_like(ids)
    pixels = torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    export(TextTower(model), (ids, mask), 'text_model.onnx', ['input_ids', 'attention_mask'], ['text_embeds', 'last_hidden_state'],
           {'input_ids': {0: 'batch_size', 1: 'sequence_length'}, 'attention_mask': {0: 'batch_size', 1: 'sequence_length'},
            'text_embeds': {0: 'batch_size'}, 'last_hidden_state': {0: 'batch_size', 1: 'sequence_length'}})
    export(VisionTower(model), (pixels,), 'vision_model.onnx', ['pixel_values'], ['image_embeds', 'last_hidden_state'],
           {'pixel_values': {0: 'batch_size'}, 'image_embeds': {0: 'batch_size'}, 'last_hidden_state': {0: 'batch_size'}})
    export(WholeModel(model), (ids, pixels, mask), 'model.onnx', ['input_ids', 'pixel_values', 'attention_mask'],
           ['logits_per_image', 'logits_per_text', 'text_embeds', 'image_embeds'],
           {'input_ids': {0: 'text_batch_size', 1: 'sequence_length'}, 'attention_mask': {0: 'text_batch_size', 1: 'sequence_length'},
            'pixel_values': {0: 'image_batch_size'}, 'logits_per_image': {0: 'image_batch_size', 1: 'text_batch_size'},
            'logits_per_text': {0: 'text_batch_size', 1: 'image_batch_size'}, 'text_embeds': {0: 'text_batch_size'},
            'image_embeds': {0: 'image_batch_size'}})

    token_texts = [
        'a photo of a person smiling', 'Make them SMILE!', "the man's hat, isn't it?", 'an old   man\twith 2 dogs in 1999',
        'café naïve — ünïcode', 'a very long prompt about a portrait of a woman with long dark hair and blue eyes standing near the sea at night in winter',
        '',
    ]
    tokens = [{'text': t, 'ids': tokenizer(t, padding='max_length', max_length=MAX_LENGTH, truncation=True)['input_ids']} for t in token_texts]

    prompts = ['a photo of a person smiling', 'a portrait of a woman with a red hat', 'a painting of a cat in the snow',
               'an old man with glasses near the sea']
    pairs = [('wide', 'tall', prompts[0], prompts[1]), ('wide', 'small', prompts[2], prompts[3]), ('tall', 'small', prompts[1], prompts[2])]

    with torch.no_grad():
        batch = tokenizer(prompts, padding='max_length', max_length=MAX_LENGTH, truncation=True, return_tensors='pt')
        text_embeds = TextTower(model)(batch['input_ids'], batch['attention_mask'])[0]
        pixel_values = processor([images[n] for n in images], return_tensors='pt')['pixel_values']
        image_embeds = VisionTower(model)(pixel_values)[0]
    text_of = dict(zip(prompts, text_embeds))
    image_of = dict(zip(images, image_embeds))

    def unit(v):
        return v / v.norm()

    def cos(a, b):
        return float(torch.nn.functional.cosine_similarity(a[None], b[None])[0])

    reference_pairs = []
    for source, edited, source_prompt, target_prompt in pairs:
        i0, i1 = unit(image_of[source]), unit(image_of[edited])
        t0, t1 = unit(text_of[source_prompt]), unit(text_of[target_prompt])
        reference_pairs.append({
            'source': source, 'edited': edited, 'sourcePrompt': source_prompt, 'targetPrompt': target_prompt,
            'scores': {'clip.source_caption': cos(i0, t0), 'clip.edited_caption': cos(i1, t1),
                       'clip.directional': cos(i1 - i0, t1 - t0), 'clip.image': cos(i0, i1)},
        })

    reference = {
        'made_by': f'scripts/make-clip-fixture.py with torch {torch.__version__}, transformers {transformers.__version__}',
        'tokens': tokens,
        'texts': [{'prompt': p, 'text_embeds': text_of[p].tolist()} for p in prompts],
        'images': [{'name': n, 'pixel_values': pixel_values[k].flatten().tolist(), 'image_embeds': image_of[n].tolist()} for k, n in enumerate(images)],
        'pairs': reference_pairs,
    }
    with open(os.path.join(OUT, 'reference.json'), 'w') as f:
        json.dump(reference, f)
    with open(os.path.join(OUT, 'README.md'), 'w') as f:
        f.write('# clip-tiny\n\nA tiny randomly initialised CLIP in ONNX with transformers\' reference outputs, for '
                f'test/scorers/clip.test.ts. Made by {reference["made_by"]} (its docstring lists the files and how to run it). '
                'Not a useful model: its numbers only have to match transformers\'.\n')
    for p in reference_pairs:
        print(p['source'], p['edited'], {k: round(v, 4) for k, v in p['scores'].items()})


if __name__ == '__main__':
    main()
