import { OnnxBuilder, int64 } from '../onnx/builder.ts';

/**
 * The ONNX graphs of the reference teacher's model folder. The "latents" are the image itself:
 * 3 channels in [-1, 1] at full resolution (VAE scale factor 1, scaling factor 1).
 */
const OPSET = 17;

/** input_ids [batch, 77] → last_hidden_state [batch, 77, K]: row `id` of the naive Bayes table per token. */
export function textEncoderGraph(table: Float32Array, vocabSize: number, classes: number, seqLen = 77): Uint8Array {
  const b = new OnnxBuilder({ opset: OPSET, name: 'reference_text_encoder' });
  const ids = b.input('input_ids', 'int64', ['batch', seqLen]);
  const t = b.initializer('token_bank_scores', table, [vocabSize, classes]);
  b.output(b.op('Gather', [t, ids], { axis: 0 }, 'last_hidden_state'), 'float32', ['batch', seqLen, classes]);
  return b.toBytes();
}

/** sample [batch, C, H, W] → latent_parameters [batch, 2C, H, W]: the image as the mean, a tiny fixed log-variance. */
export function vaeEncoderGraph(channels: number): Uint8Array {
  const b = new OnnxBuilder({ opset: OPSET, name: 'reference_vae_encoder' });
  const x = b.input('sample', 'float32', ['batch', channels, 'height', 'width']);
  const logvar = b.op('Add', [b.op('Mul', [x, b.constant(new Float32Array([0]), [], 'zero')]), b.constant(new Float32Array([-30]), [], 'logvar')]);
  b.output(b.op('Concat', [x, logvar], { axis: 1 }, 'latent_parameters'), 'float32', ['batch', 2 * channels, 'height', 'width']);
  return b.toBytes();
}

/** latent_sample [batch, C, H, W] → sample: the identity. */
export function vaeDecoderGraph(channels: number): Uint8Array {
  const b = new OnnxBuilder({ opset: OPSET, name: 'reference_vae_decoder' });
  const z = b.input('latent_sample', 'float32', ['batch', channels, 'height', 'width']);
  b.output(b.op('Identity', [z], {}, 'sample'), 'float32', ['batch', channels, 'height', 'width']);
  return b.toBytes();
}

export interface DenoiserSpec {
  /** banks[k][i]: bank k, item i, flattened latent of `channels * height * width` values. */
  banks: Float32Array[][];
  channels: number;
  height: number;
  width: number;
  /** The training noise schedule's alphas_cumprod (length num_train_timesteps). */
  alphasCumprod: Float32Array;
  /** Per-bank score added before the choice (ties go to the lowest index). */
  bankBias?: Float32Array;
  prediction: 'epsilon' | 'v_prediction';
  /**
   * InstructPix2Pix-style image conditioning: the UNet takes 2C channels (latents ++ image latents) and
   * the prior over bank items is log π_i = −strength · ‖c − s_i‖² / D, with s_i = banks[sourceBank][i]
   * and c the image latents; all-zero image latents (the unconditional branch) give a uniform prior.
   */
  image?: { strength: number; sourceBank: number };
  /**
   * Edits that fail (the instruct folder): bankPrior[c * K + k] = log P(bank k | the text chose bank c),
   * a large negative number (not −∞) for banks never drawn. The denoiser is then the exact one of the
   * mixture of every bank's items under that prior (times the image prior), so a seed may end on an
   * unedited face or another edit. Absent: only the chosen bank's items.
   */
  bankPrior?: Float32Array;
}

/**
 * The exact denoiser of a finite image set, per bank. For x_t and ᾱ = ᾱ(t):
 *   w = softmax_i(log π_i + (√ᾱ x_t·x_i − ᾱ‖x_i‖²/2) / (1 − ᾱ))   (‖x_t − √ᾱ x_i‖² up to a constant in i)
 *   x̂0 = Σ w_i x_i,   ε = (x_t − √ᾱ x̂0) / √(1 − ᾱ),   v = √ᾱ ε − √(1 − ᾱ) x̂0.
 * The bank is the highest of Σ_tokens encoder_hidden_states + bankBias. ᾱ(t) for a fractional t
 * (sigma schedulers) is interpolated linearly between the two integer timesteps.
 */
export function denoiserGraph(spec: DenoiserSpec): Uint8Array {
  const { banks, channels: C, height: H, width: W } = spec;
  const K = banks.length;
  const N = banks[0].length;
  const D = C * H * W;
  const T = spec.alphasCumprod.length;
  const b = new OnnxBuilder({ opset: OPSET, name: 'reference_denoiser' });
  const inC = spec.image ? 2 * C : C;
  const sample = b.input('sample', 'float32', ['batch', inC, H, W]);
  const timestep = b.input('timestep', 'float32', ['batch']);
  const ehs = b.input('encoder_hidden_states', 'float32', ['batch', 'sequence', K]);

  const all = new Float32Array(K * N * D);
  const norms = new Float32Array(K * N);
  banks.forEach((bank, k) => {
    if (bank.length !== N) throw new Error(`bank ${k} has ${bank.length} items, expected ${N}`);
    bank.forEach((x, i) => {
      if (x.length !== D) throw new Error(`bank ${k} item ${i} has ${x.length} values, expected ${D}`);
      all.set(x, (k * N + i) * D);
      let s = 0;
      for (const v of x) s += v * v;
      norms[k * N + i] = s;
    });
  });
  const bankData = b.initializer('bank', all, [K, N, D]);
  const bankNorms = b.initializer('bank_sq_norms', norms, [K, N]);
  const c = (values: number[], dims: number[], name: string) => b.constant(new Float32Array(values), dims, name);
  const i64 = (values: number[], name: string) => b.constant(int64(values), [values.length], name);

  // Which bank: sum the token scores, add the bias, take the best.
  let scores = b.op('ReduceSum', [ehs, i64([1], 'seq_axis')], { keepdims: 0 });
  if (spec.bankBias) scores = b.op('Add', [scores, b.constant(spec.bankBias, [K], 'bank_bias')]);
  const choice = b.op('ArgMax', [scores], { axis: 1, keepdims: 0 }, 'bank_choice');

  // Noise level: ᾱ(t) and 1 − ᾱ(t), each interpolated linearly between integer timesteps (a table of
  // 1 − ᾱ keeps precision near t = 0; ᾱ = 0 at a zero-SNR terminal step is fine).
  const tc = b.op('Clip', [timestep, c([0], [], 't_min'), c([T - 1], [], 't_max')]);
  const t0 = b.op('Floor', [tc]);
  const frac = b.op('Unsqueeze', [b.op('Sub', [tc, t0]), i64([1], 'frac_axis')]); // [B, 1]
  const i0 = b.op('Cast', [t0], { to: 7 });
  const i1 = b.op('Min', [b.op('Add', [i0, b.constant(int64([1]), [], 'one_i64')]), b.constant(int64([T - 1]), [], 'last_i64')]);
  const lerp = (name: string, values: Float32Array) => {
    const table = b.initializer(name, values, [T]);
    const v0 = b.op('Unsqueeze', [b.op('Gather', [table, i0], { axis: 0 }), i64([1], `${name}_axis0`)]);
    const v1 = b.op('Unsqueeze', [b.op('Gather', [table, i1], { axis: 0 }), i64([1], `${name}_axis1`)]);
    return b.op('Add', [v0, b.op('Mul', [frac, b.op('Sub', [v1, v0])])]); // [B, 1]
  };
  const abar = lerp('alphas_cumprod', spec.alphasCumprod);
  const oneMinus = b.op('Max', [lerp('one_minus_alphas_cumprod', Float32Array.from(spec.alphasCumprod, (a) => 1 - a)), c([1e-12], [], 'noise_floor')]);
  const sqrtAbar = b.op('Sqrt', [abar]);
  const sqrtOneMinus = b.op('Sqrt', [oneMinus]);

  // Latents (and the image condition) as [B, D].
  const flatShape = i64([0, -1], 'flat_shape');
  let xt: string;
  let prior: string | null = null;
  if (spec.image) {
    const [lat, cond] = b.node('Split', [sample, i64([C, C], 'split_sizes')], ['latents', 'image_latents'], { axis: 1 });
    xt = b.op('Reshape', [lat, flatShape]);
    const cf = b.op('Reshape', [cond, b.constant(int64([0, -1]), [2], 'flat_shape_c')]); // [B, D]
    const src = b.op('Gather', [bankData, b.constant(int64([spec.image.sourceBank]), [], 'source_bank')], { axis: 0 }); // [N, D]
    const srcNorms = b.op('Gather', [bankNorms, b.constant(int64([spec.image.sourceBank]), [], 'source_bank_n')], { axis: 0 }); // [N]
    const cNorm = b.op('ReduceSum', [b.op('Mul', [cf, cf]), i64([1], 'sum_axis_c')], { keepdims: 1 }); // [B, 1]
    const cDot = b.op('MatMul', [cf, b.op('Transpose', [src], { perm: [1, 0] })]); // [B, N]
    const d2 = b.op('Add', [b.op('Sub', [cNorm, b.op('Mul', [cDot, c([2], [], 'two')])]), srcNorms]);
    const present = b.op('Cast', [b.op('Greater', [cNorm, c([0], [], 'zero_c')])], { to: 1 }); // 0 for the unconditional branch
    prior = b.op('Mul', [b.op('Mul', [d2, present]), c([-spec.image.strength / D], [], 'prior_scale')]);
  } else {
    xt = b.op('Reshape', [sample, flatShape]);
  }

  // Logits over the bank items (−‖x_t − √ᾱ x_i‖²/(2(1 − ᾱ)) up to a constant) and the posterior mean.
  const logitsOf = (dots: string, itemNorms: string) =>
    b.op('Div', [b.op('Sub', [b.op('Mul', [dots, sqrtAbar]), b.op('Mul', [itemNorms, b.op('Mul', [abar, c([0.5], [], 'half')])])]), oneMinus]);
  let x0: string;
  if (spec.bankPrior) {
    // Every bank's items at once, [B, K·N]: one matrix product against the whole bank, no per-item copy.
    if (spec.bankPrior.length !== K * K) throw new Error(`bankPrior has ${spec.bankPrior.length} values, expected ${K * K}`);
    const flat = b.op('Reshape', [bankData, i64([K * N, D], 'bank_flat_shape')]);
    const flatNorms = b.op('Reshape', [bankNorms, i64([1, K * N], 'norms_flat_shape')]);
    const dots = b.op('Gemm', [xt, flat], { transB: 1 }); // [B, K·N]
    const bankLogPrior = b.op('Unsqueeze', [b.op('Gather', [b.initializer('bank_log_prior', spec.bankPrior, [K, K]), choice], { axis: 0 }), i64([2], 'bank_prior_axis')]); // [B, K, 1]
    const itemPrior = prior ? b.op('Add', [bankLogPrior, b.op('Unsqueeze', [prior, i64([1], 'person_prior_axis')])]) : bankLogPrior; // [B, K, N] or [B, K, 1]
    const expanded = b.op('Expand', [itemPrior, b.constant(int64([1, K, N]), [3], 'prior_shape')]);
    const logits = b.op('Add', [logitsOf(dots, flatNorms), b.op('Reshape', [expanded, i64([0, K * N], 'prior_flat_shape')])]);
    const w = b.op('Softmax', [logits], { axis: 1 }, 'bank_weights');
    x0 = b.op('MatMul', [w, flat]); // [B, D]
  } else {
    const items = b.op('Gather', [bankData, choice], { axis: 0 }); // [B, N, D]
    const itemNorms = b.op('Gather', [bankNorms, choice], { axis: 0 }); // [B, N]
    const dots = b.op('Squeeze', [b.op('MatMul', [items, b.op('Unsqueeze', [xt, i64([2], 'dot_axis')])]), i64([2], 'dot_axis2')]); // [B, N]
    let logits = logitsOf(dots, itemNorms);
    if (prior) logits = b.op('Add', [logits, prior]);
    const w = b.op('Softmax', [logits], { axis: 1 }, 'bank_weights');
    x0 = b.op('Squeeze', [b.op('MatMul', [b.op('Unsqueeze', [w, i64([1], 'w_axis')]), items]), i64([1], 'x0_axis')]); // [B, D]
  }
  const scaledX0 = b.op('Mul', [x0, sqrtAbar]);
  const eps = b.op('Div', [b.op('Sub', [xt, scaledX0]), sqrtOneMinus]);
  const out = spec.prediction === 'epsilon' ? eps : b.op('Sub', [b.op('Mul', [eps, sqrtAbar]), b.op('Mul', [x0, sqrtOneMinus])]);
  const shape = b.constant(int64([-1, C, H, W]), [4], 'out_shape');
  b.output(b.op('Reshape', [out, shape], {}, 'out_sample'), 'float32', ['batch', C, H, W]);
  return b.toBytes();
}
