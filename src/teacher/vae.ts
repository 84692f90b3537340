import type { DiffusersModel } from './model.ts';
import type { Tensor } from '../onnx/model.ts';

/**
 * The VAE halves as the pipelines use them. Images here are float NCHW in [-1, 1] on the model side
 * and float HWC in [0, 1] on the user side (diffusers' output_type="np").
 */

/**
 * Run `one` on each item of a batch and stack the results: the VAE runs one image at a time, so its
 * activations (hundreds of MB per 512 px image) do not grow with the batch. Same values as one batched call.
 */
async function eachItem(batch: Tensor, one: (item: Tensor) => Promise<Tensor>): Promise<Tensor> {
  const [b, ...rest] = batch.dims;
  const size = batch.data.length / b;
  const outs: Tensor[] = [];
  for (let i = 0; i < b; i++) outs.push(await one({ data: batch.data.subarray(i * size, (i + 1) * size), dims: [1, ...rest] }));
  if (b === 1) return outs[0];
  const data = new Float32Array(outs.reduce((a, o) => a + o.data.length, 0));
  outs.forEach((o, i) => data.set(o.data, i * o.data.length));
  return { data, dims: [b, ...outs[0].dims.slice(1)] };
}

/** Image latents: the mean of the VAE posterior, unscaled (what InstructPix2Pix conditions on). */
export async function encodeMean(model: DiffusersModel, images: Tensor): Promise<Tensor> {
  return eachItem(images, (image) => encodeMeanOne(model, image));
}

async function encodeMeanOne(model: DiffusersModel, images: Tensor): Promise<Tensor> {
  const enc = model.vaeEncoder!;
  const name = enc.outputs.has('latent_parameters') ? 'latent_parameters' : 'latent_sample';
  const [out] = await enc.run({ sample: images }, [name]);
  const [b, c2, h, w] = out.dims;
  const c = model.vae.latentChannels;
  if (c2 === c) return out;
  // latent_parameters holds [mean, log-variance] on the channel axis; keep the mean.
  const data = new Float32Array(b * c * h * w);
  for (let i = 0; i < b; i++) data.set(out.data.subarray(i * c2 * h * w, (i * c2 + c) * h * w), i * c * h * w);
  return { data, dims: [b, c, h, w] };
}

/** Latents in the diffusion model's space (scaled): mean * scaling_factor, as img2img starts from. */
export async function encodeScaled(model: DiffusersModel, images: Tensor): Promise<Tensor> {
  const mean = await encodeMean(model, images);
  const { latentsMean, latentsStd, scalingFactor } = model.vae;
  const [, c, h, w] = mean.dims;
  const data = mean.data.map((v, i) => {
    const ch = Math.floor(i / (h * w)) % c;
    return latentsMean && latentsStd ? ((v - latentsMean[ch]) * scalingFactor) / latentsStd[ch] : v * scalingFactor;
  });
  return { data, dims: mean.dims };
}

/** Denoised latents → images float NCHW in [0, 1] (clamped, as diffusers' postprocess). */
export async function decode(model: DiffusersModel, latents: Tensor): Promise<Tensor> {
  const { latentsMean, latentsStd, scalingFactor } = model.vae;
  const [, c, h, w] = latents.dims;
  const scaled = latents.data.map((v, i) => {
    const ch = Math.floor(i / (h * w)) % c;
    return latentsMean && latentsStd ? (v * latentsStd[ch]) / scalingFactor + latentsMean[ch] : v / scalingFactor;
  });
  const out = await eachItem({ data: scaled, dims: latents.dims }, async (one) => (await model.vaeDecoder!.run({ latent_sample: one }, ['sample']))[0]);
  const data = out.data.map((v) => Math.min(1, Math.max(0, v / 2 + 0.5)));
  return { data, dims: out.dims };
}

/** Float HWC images in [0, 1] (one per item, same size) → a float NCHW batch in [-1, 1]. */
export function toModelImages(images: Float32Array[], height: number, width: number): Tensor {
  const plane = height * width;
  const data = new Float32Array(images.length * 3 * plane);
  images.forEach((img, b) => {
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) data[(b * 3 + c) * plane + p] = img[p * 3 + c] * 2 - 1;
  });
  return { data, dims: [images.length, 3, height, width] };
}

/** Item b of a float NCHW batch in [0, 1] → float HWC. */
export function toHwc(images: Tensor, b: number): Float32Array {
  const [, c, h, w] = images.dims;
  const plane = h * w;
  const out = new Float32Array(plane * c);
  for (let p = 0; p < plane; p++) for (let k = 0; k < c; k++) out[p * c + k] = images.data[(b * c + k) * plane + p];
  return out;
}
