import { log } from '../util/log.ts';
import type { DiffusersModel } from './model.ts';
import { penultimateHiddenState } from './model.ts';

/** One prompt's text conditioning: the UNet's encoder_hidden_states row, and SDXL's pooled text_embeds. */
export interface PromptEmbedding {
  hidden: Float32Array;
  pooled: Float32Array | null;
}

/**
 * Prompt → text conditioning, as diffusers' encode_prompt does it:
 * SD: the text encoder's last_hidden_state of the prompt padded to the model length.
 * SDXL: both encoders' penultimate hidden states concatenated on the feature axis, and the second
 * encoder's projected pooled output (text_embeds).
 * A negative prompt of null is diffusers' None: the empty string, or zeros for SDXL models that set
 * force_zeros_for_empty_prompt.
 */
export class PromptEncoder {
  private readonly cache = new Map<string, PromptEmbedding>();
  readonly seqLen: number;

  constructor(private readonly model: DiffusersModel) {
    const len = model.textEncoders[0].input('input_ids').shape[1];
    this.seqLen = typeof len === 'number' ? len : 77;
  }

  async encode(prompts: string[]): Promise<PromptEmbedding[]> {
    const todo = [...new Set(prompts.filter((p) => !this.cache.has(p)))];
    if (todo.length) {
      const embeddings = await this.run(todo);
      todo.forEach((p, i) => this.cache.set(p, embeddings[i]));
      // Prompts repeat (negative prompts, the same edit over many seeds); keep the cache small.
      while (this.cache.size > 256) this.cache.delete(this.cache.keys().next().value as string);
    }
    return prompts.map((p) => this.cache.get(p)!);
  }

  async encodeNegative(prompts: (string | null)[]): Promise<PromptEmbedding[]> {
    const zeros = this.model.kind === 'sdxl' && this.model.forceZerosForEmptyPrompt;
    const texts = prompts.map((p) => p ?? '');
    const encoded = await this.encode(texts);
    return encoded.map((e, i) =>
      prompts[i] === null && zeros ? { hidden: new Float32Array(e.hidden.length), pooled: e.pooled && new Float32Array(e.pooled.length) } : e,
    );
  }

  private async run(prompts: string[]): Promise<PromptEmbedding[]> {
    const b = prompts.length;
    const hiddenParts: { data: Float32Array; dim: number }[] = [];
    let pooled: { data: Float32Array; dim: number } | null = null;
    for (const [k, encoder] of this.model.textEncoders.entries()) {
      const tokenizer = this.model.tokenizers[k];
      const ids = new Array<number>(b * this.seqLen);
      prompts.forEach((p, i) => {
        const r = tokenizer.encode(p, { padding: 'max_length', truncation: true, maxLength: this.seqLen });
        if (r.truncated && k === 0) log.warn(`prompt longer than the model's ${this.seqLen} tokens was truncated`, { prompt: p });
        for (let j = 0; j < this.seqLen; j++) ids[i * this.seqLen + j] = r.ids[j];
      });
      const hiddenName = this.model.kind === 'sdxl' ? penultimateHiddenState(encoder)! : 'last_hidden_state';
      const wantPooled = this.model.kind === 'sdxl' && encoder.outputs.has('text_embeds');
      const outs = await encoder.run({ input_ids: { data: ids, dims: [b, this.seqLen] } }, wantPooled ? [hiddenName, 'text_embeds'] : [hiddenName]);
      hiddenParts.push({ data: outs[0].data, dim: outs[0].dims[outs[0].dims.length - 1] });
      if (wantPooled) pooled = { data: outs[1].data, dim: outs[1].dims[1] };
    }
    const dim = hiddenParts.reduce((a, p) => a + p.dim, 0);
    return prompts.map((_, i) => {
      // Concatenate the encoders' features per token (SDXL); a single encoder is a plain copy.
      const hidden = new Float32Array(this.seqLen * dim);
      for (let t = 0; t < this.seqLen; t++) {
        let o = t * dim;
        for (const part of hiddenParts) {
          const src = (i * this.seqLen + t) * part.dim;
          hidden.set(part.data.subarray(src, src + part.dim), o);
          o += part.dim;
        }
      }
      return { hidden, pooled: pooled ? pooled.data.slice(i * pooled.dim, (i + 1) * pooled.dim) : null };
    });
  }
}
